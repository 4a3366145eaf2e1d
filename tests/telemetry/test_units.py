"""Telemetry's pieces on their own: settings, label bounds, local bucketing, config and flags."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from sidecar.cli import _parser, resolve_config
from sidecar.config import build_config
from sidecar.config.model import TracesConfig
from sidecar.core import NOOP_REQUEST, Target
from sidecar.errors import ConfigError
from sidecar.telemetry import NOOP_TELEMETRY, build_telemetry
from sidecar.telemetry.live import LiveTelemetry
from sidecar.telemetry.metrics import TPOT_BUCKETS, TpotAccumulator
from sidecar.telemetry.settings import traces_endpoint
from tests.conftest import ROOT, start_sidecar

MOCK = {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}


def test_traces_endpoint_from_config_then_environment() -> None:
    none = TracesConfig()
    assert traces_endpoint(none, {}) is None
    assert traces_endpoint(none, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}) == "http://c:4317"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4317",
    }
    assert traces_endpoint(none, env) == "http://t:4317"
    assert traces_endpoint(TracesConfig(endpoint="http://y:4317"), env) == "http://y:4317"
    assert traces_endpoint(TracesConfig(endpoint="http://y:4317"), {"OTEL_SDK_DISABLED": "true"}) is None
    assert traces_endpoint(none, {**env, "OTEL_TRACES_EXPORTER": "none"}) is None


def test_nothing_configured_is_the_shared_noop() -> None:
    config = build_config({**MOCK, "telemetry": {"metrics": False}})
    telemetry = build_telemetry(config, env={})
    assert telemetry is NOOP_TELEMETRY
    assert telemetry.begin("http", "/v1/messages", {}) is NOOP_REQUEST
    assert telemetry.render_metrics() is None


def test_tpot_accumulator_equals_one_observe_per_sample() -> None:
    samples = [(0.0, 3), (0.0004, 1), (0.003, 2), (0.01, 1), (0.0123, 5), (2.5, 1), (9.0, 2)]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("tpot_seconds", "x", buckets=TPOT_BUCKETS, registry=one)
    h2 = Histogram("tpot_seconds", "x", buckets=TPOT_BUCKETS, registry=bulk)
    acc = TpotAccumulator()
    for value, n in samples:
        acc.add(value, n)
        for _ in range(n):
            h1.observe(value)
    acc.flush(h2)
    assert generate_latest(one) == generate_latest(bulk)


def test_model_label_bounds() -> None:
    config = build_config({**MOCK, "telemetry": {"model_label_limit": 2}})
    telemetry = LiveTelemetry(config, None, {})
    labels = [telemetry.model_label(Target("m", f"x{i}", "*")) for i in range(5)]
    assert labels == ["x0", "x1", "other", "other", "other"]
    assert telemetry.model_label(Target("m", "x1", "x*")) == "x1"  # already known
    # Exact routes (bounded by the config) always keep their own name.
    assert telemetry.model_label(Target("m", "exact", "exact")) == "exact"


def test_config_and_flags() -> None:
    config = build_config(MOCK)
    assert (config.admin.host, config.admin.port, config.admin.enabled) == ("127.0.0.1", 9901, True)
    assert config.telemetry.metrics and config.telemetry.model_label_limit == 50
    with pytest.raises(ConfigError, match=r"^admin\.port: must be between 0 and 65535$"):
        build_config({**MOCK, "admin": {"port": 70000}})
    with pytest.raises(ConfigError, match=r"^telemetry\.model_label_limit: must be >= 0$"):
        build_config({**MOCK, "telemetry": {"model_label_limit": -1}})
    with pytest.raises(ConfigError, match=r"^telemetry\.traces: Object contains unknown field `colour`$"):
        build_config({**MOCK, "telemetry": {"traces": {"colour": "red"}}})
    args = _parser().parse_args(["--admin-port", "0", "--admin-host", "0.0.0.0", "--no-metrics"])
    resolved = resolve_config(args)
    assert (resolved.admin.host, resolved.admin.port) == ("0.0.0.0", 0)
    assert not resolved.telemetry.metrics
    assert not resolve_config(_parser().parse_args(["--no-admin"])).admin.enabled
    with pytest.raises(ConfigError, match="--admin-port"):
        resolve_config(_parser().parse_args(["--admin-port", "99999"]))


def test_admin_port_in_use_stops_with_one_line() -> None:
    sp = start_sidecar("--no-grpc", expect_grpc=False)
    try:
        port = sp.admin_url.rsplit(":", 1)[1]
        r = subprocess.run(
            [sys.executable, "-m", "sidecar", "--http-port", "0", "--no-grpc", "--admin-port", port],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sp.stop()
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"sidecar: cannot listen: admin listener 127.0.0.1:{port}: Address already in use"
    ]


def test_no_admin_listener() -> None:
    sp = start_sidecar("--no-admin", "--no-grpc", expect_grpc=False)
    try:
        assert sp.admin_url == ""
        assert not any("admin" in line for line in sp.lines)
    finally:
        sp.stop()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  # version 00 has 4 fields
        "00-0x f7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_invalid_traceparent_is_ignored(value: str) -> None:
    from sidecar.telemetry.tracing import parse_traceparent

    assert parse_traceparent(value) is None


def test_traceparent_parsed() -> None:
    from sidecar.telemetry.tracing import parse_traceparent

    sc = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=1,b=2")
    assert sc is not None and sc.is_remote and sc.trace_flags.sampled
    assert (sc.trace_id, sc.span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert sc.trace_state.to_header() == "a=1,b=2"
    # A later version may append fields.
    later = parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-what-ever")
    assert later is not None and not later.trace_flags.sampled
