"""The command line: check-config, bad configs, flags, ports, doors and the admin listener switched off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sidecar.cli import _parser, resolve_config
from sidecar.config import build_config
from sidecar.errors import ConfigError
from tests.conftest import MOCK_CONFIG, ROOT, start_sidecar

GOOD = """
upstreams:
  m: {provider: mock}
routes:
  - {match: "*", upstream: m}
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_check_config_ok_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    r = _run("check-config", str(good))
    assert r.returncode == 0 and "ok" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("provider: mock", "provider: mock, words: many"))
    r = _run("check-config", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "sidecar: invalid config: upstreams.m.words: Expected `int`, got `str`"
    ]


def test_serving_with_a_bad_config_stops_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("upstream: m", "upstream: q"))
    r = _run("--config", str(bad), "--http-port", "0", "--grpc-port", "0")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "sidecar: invalid config: routes.0.upstream: no upstream named 'q'"
    ]
    assert r.stdout == ""


def test_console_script_and_module_agree() -> None:
    script = Path(sys.executable).with_name("sidecar")
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "check-config" in r.stdout


def test_http_only_and_port_zero(tmp_path: Path) -> None:
    sp = start_sidecar("--no-grpc", expect_grpc=False)
    try:
        port = int(sp.http_url.rsplit(":", 1)[1])
        assert port != 0
        assert httpx.get(sp.http_url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(sp.http_url + "/readyz").status_code == 200
        assert not any("grpc listening" in line for line in sp.lines)
    finally:
        sp.stop()
    assert sp.proc.returncode == 0


def test_both_doors_off_is_refused() -> None:
    r = _run("--no-http", "--no-grpc")
    assert r.returncode == 1 and "both doors" in r.stderr


def test_port_in_use_is_one_clear_line() -> None:
    sp = start_sidecar("--no-grpc", expect_grpc=False)
    try:
        port = sp.http_url.rsplit(":", 1)[1]
        r = _run("--http-port", port, "--no-grpc")
        assert r.returncode == 1
        assert "cannot listen" in r.stderr and "Traceback" not in r.stderr
    finally:
        sp.stop()


def test_config_and_flags() -> None:
    config = build_config(MOCK_CONFIG)
    assert (config.admin.host, config.admin.port, config.admin.enabled) == ("127.0.0.1", 9901, True)
    assert config.telemetry.metrics and config.telemetry.model_label_limit == 50
    with pytest.raises(ConfigError, match=r"^admin\.port: must be between 0 and 65535$"):
        build_config({**MOCK_CONFIG, "admin": {"port": 70000}})
    with pytest.raises(ConfigError, match=r"^telemetry\.model_label_limit: must be >= 0$"):
        build_config({**MOCK_CONFIG, "telemetry": {"model_label_limit": -1}})
    with pytest.raises(ConfigError, match=r"^telemetry\.traces: Object contains unknown field `colour`$"):
        build_config({**MOCK_CONFIG, "telemetry": {"traces": {"colour": "red"}}})
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
        r = _run("--http-port", "0", "--no-grpc", "--admin-port", port)
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
