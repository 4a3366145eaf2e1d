"""A small OTLP/gRPC trace collector: accepts ``ExportTraceServiceRequest``s, counts them and
their spans, and keeps their serialized bytes (the sweep greps them for secrets)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from grpc import aio as grpc_aio
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc

MAX_KEPT_BYTES = 64 * 1024 * 1024  # beyond this, exports are counted but not kept


class _TraceService(ts_grpc.TraceServiceServicer):  # type: ignore[misc,unused-ignore]  # untyped base
    def __init__(self, stub: OtlpStub) -> None:
        self._stub = stub

    async def Export(self, request: Any, context: Any) -> Any:
        self._stub.received(request)
        return ts_pb2.ExportTraceServiceResponse()


class OtlpStub:
    """``await start()`` returns the endpoint (``http://127.0.0.1:PORT``); ``close()`` stops it."""

    def __init__(self) -> None:
        self.requests = 0
        self.spans = 0
        self.span_names: Counter[str] = Counter()
        self.kept: list[bytes] = []
        self._kept_bytes = 0
        self._server: Any = None

    def received(self, request: Any) -> None:
        self.requests += 1
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans += 1
                    self.span_names[span.name] += 1
        data = request.SerializeToString()
        if self._kept_bytes + len(data) <= MAX_KEPT_BYTES:
            self.kept.append(data)
            self._kept_bytes += len(data)

    async def start(self) -> str:
        self._server = grpc_aio.server()
        ts_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)  # type: ignore[no-untyped-call]
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
