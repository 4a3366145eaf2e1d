"""Real parts for telemetry tests: /metrics scraped over HTTP, an OTLP/gRPC trace receiver, and
one sidecar (subprocess) that routes ``mock-*`` to the built-in mock and everything else to the
fake Anthropic API, exporting spans to the receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SidecarProcess, start_sidecar
from tests.fakes.anthropic_api import FakeAnthropic

Labels = frozenset[tuple[str, str]]


class Metrics:
    """One scrape: every sample by (name, labels)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def sum(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(ls) for (n, ls) in self.samples if n == name]


def scrape(admin_url: str) -> Metrics:
    r = httpx.get(admin_url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Metrics(r.text)


class Delta:
    """Counter and histogram-count changes between two scrapes."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.before = scrape(admin_url)
        self.after = self.before

    def update(self) -> Delta:
        self.after = scrape(self.admin_url)
        return self

    def __call__(self, name: str, **labels: str) -> float:
        return self.after.sum(name, **labels) - self.before.sum(name, **labels)

    def wait(self, name: str, value: float, timeout: float = 10.0, **labels: str) -> float:
        """Scrape until ``name`` has changed by ``value`` (the request may still be finishing)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.update()(name, **labels)
            if got == value or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


# -- the OTLP receiver -----------------------------------------------------------------------------
def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP KeyValues as a plain dict (arrays as tuples)."""

    def value(v: common_pb2.AnyValue) -> Any:
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return tuple(value(x) for x in v.array_value.values)
        return getattr(v, kind) if kind else None

    return {kv.key: value(kv.value) for kv in kvs}


class Span:
    def __init__(self, span: trace_pb2.Span, resource: dict[str, Any]) -> None:
        self.raw = span
        self.name = span.name
        self.kind = span.kind
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_id = span.parent_span_id.hex()
        self.attrs = attributes(span.attributes)
        self.status = span.status.code
        self.resource = resource
        self.start_ns = span.start_time_unix_nano
        self.end_ns = span.end_time_unix_nano

    def __repr__(self) -> str:
        return f"Span({self.name!r}, {self.attrs})"


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """A gRPC server implementing the OpenTelemetry collector's TraceService, keeping every span."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    self.spans.extend(Span(s, resource) for s in ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait(self, predicate: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        """Every span received, once ``predicate`` holds for them (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"spans never matched; got {spans}")
            time.sleep(0.05)

    def trace(self, trace_id: str, count: int) -> list[Span]:
        """The spans of one trace, once ``count`` of them have arrived."""
        spans = self.wait(lambda ss: sum(s.trace_id == trace_id for s in ss) >= count)
        return [s for s in spans if s.trace_id == trace_id]

    def stop(self) -> None:
        self._server.stop(0)


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


CONFIG = """
upstreams:
  fake: {{provider: anthropic, base_url: "{base_url}"}}
  mock: {{provider: mock, words: 6}}
routes:
  - {{match: "mock-*", upstream: mock}}
  - {{match: "*", upstream: fake}}
"""


@pytest.fixture(scope="session")
def observed(
    fake_anthropic: FakeAnthropic, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarProcess]:
    """The sidecar with metrics and traces on (spans to ``otlp``, exported every 50 ms)."""
    path: Path = tmp_path_factory.mktemp("telemetry") / "sidecar.yaml"
    path.write_text(CONFIG.format(base_url=fake_anthropic.base_url))
    sp = start_sidecar(
        "--config",
        str(path),
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"},
    )
    assert sp.admin_url
    yield sp
    sp.stop()
