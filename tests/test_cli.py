"""The command line: check-config, bad configs, ports, doors switched off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, start_sidecar

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
