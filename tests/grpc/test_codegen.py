"""The committed generated code is exactly what grpcio-tools produces from proto/."""

from __future__ import annotations

from sidecar.grpc import codegen


def test_generated_code_is_up_to_date() -> None:
    stale = codegen.check()
    assert stale == [], f"regenerate with `make proto` (python -m sidecar.grpc.codegen --write): {stale}"


def test_generated_code_imports() -> None:
    from sidecar.messages.v1 import messages_pb2, messages_pb2_grpc

    assert messages_pb2.DESCRIPTOR.package == "sidecar.messages.v1"
    service = messages_pb2.DESCRIPTOR.services_by_name["Messages"]
    assert [m.name for m in service.methods] == [
        "CreateMessage",
        "StreamMessage",
        "CountTokens",
        "ListModels",
        "GetModel",
    ]
    assert hasattr(messages_pb2_grpc, "MessagesServicer")
    assert hasattr(messages_pb2_grpc, "add_MessagesServicer_to_server")
