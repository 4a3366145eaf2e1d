from __future__ import annotations

import subprocess
import sys

import grpc

from sidecar import errors
from tests.conftest import ROOT


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def test_every_error_class_maps_to_one_http_status_and_grpc_code() -> None:
    for cls in [errors.SidecarError, *_subclasses(errors.SidecarError)]:
        assert cls.error_type in errors.ERROR_TYPES, cls
        exc = cls("x")
        assert isinstance(exc.grpc_code, grpc.StatusCode)
        assert 400 <= exc.status <= 599


def test_issue_mapping_of_types_to_grpc_codes() -> None:
    expected = {
        "invalid_request_error": grpc.StatusCode.INVALID_ARGUMENT,
        "authentication_error": grpc.StatusCode.UNAUTHENTICATED,
        "permission_error": grpc.StatusCode.PERMISSION_DENIED,
        "not_found_error": grpc.StatusCode.NOT_FOUND,
        "rate_limit_error": grpc.StatusCode.RESOURCE_EXHAUSTED,
        "overloaded_error": grpc.StatusCode.UNAVAILABLE,
        "timeout_error": grpc.StatusCode.DEADLINE_EXCEEDED,
        "api_error": grpc.StatusCode.INTERNAL,
    }
    for etype, code in expected.items():
        assert errors.grpc_code_for_type(etype) == code
    assert errors.grpc_code_for_type("some_future_error") == grpc.StatusCode.INTERNAL


def test_status_to_type() -> None:
    assert errors.error_type_for_status(529) == "overloaded_error"
    assert errors.error_type_for_status(418) == "invalid_request_error"
    assert errors.error_type_for_status(599) == "api_error"


def test_envelope_shape() -> None:
    exc = errors.RateLimited("slow down", details={"error_code": "x"})
    assert exc.body("req_1") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down", "details": {"error_code": "x"}},
        "request_id": "req_1",
    }


def test_a_sidecar_without_the_grpc_door_never_loads_grpc() -> None:
    # grpcio's core is about 8 MB resident: only the gRPC door (and asking for a gRPC code) loads it.
    code = (
        "import sys, sidecar.cli, sidecar.runtime, sidecar.telemetry.live, sidecar.http.admin;"
        "from sidecar import errors; errors.SidecarError('x').status;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert errors.ERROR_TYPES["overloaded_error"] == (529, grpc.StatusCode.UNAVAILABLE)
