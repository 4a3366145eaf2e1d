"""The runtime loads only what its config uses: no OpenTelemetry without a traces endpoint, no
admission gate, key store or limiters without an admission section, no YAML without a file, no
translation without an OpenAI upstream. Each case builds a Runtime in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sidecar.config.model import HttpListener, Listeners
from sidecar.runtime import http_origin
from tests.conftest import ROOT

PROBE = """
import json, sys
from sidecar.cli import config_from_argv
from sidecar.runtime import Runtime
Runtime(config_from_argv(sys.argv[1:]))
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = ("opentelemetry", "sidecar.admission.gate", "sidecar.admission.limiter", "yaml", "sidecar.translate")


def loaded(*args: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(run.stdout))
    return {prefix for prefix in HEAVY if any(m == prefix or m.startswith(prefix + ".") for m in modules)}


def test_a_plain_upstream_loads_nothing_it_does_not_use() -> None:
    assert loaded("--upstream", "http://127.0.0.1:9") == set()
    assert loaded() == set()  # the mock


def test_what_a_config_names_is_loaded(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        "upstreams: {o: {provider: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "routes: [{match: '*', upstream: o}]\n"
        "telemetry: {traces: {endpoint: 'http://127.0.0.1:9'}}\n"
        "admission: {tiers: {t: {}}, keys: [{name: a, sha256: '" + "0" * 64 + "', tier: t}]}\n"
    )
    assert loaded("--config", str(config)) == set(HEAVY)


SERVE = """
import asyncio, json, sys
from sidecar.cli import config_from_argv
from sidecar.runtime import Runtime

async def main():
    rt = Runtime(config_from_argv(["--http-port", "0", "--grpc-port", "0", "--admin-port", "0", *sys.argv[1:]]))
    await rt.start()
    answers = []
    for port in (rt.http_port, rt.admin_port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
        answers.append((await reader.read()).split(b"\\r\\n", 1)[0].decode())
        writer.close()
    await rt.stop(0)
    print(json.dumps({"answers": answers, "uvicorn": "uvicorn" in sys.modules}))

asyncio.run(main())
"""


def test_uvicorn_is_loaded_only_when_the_config_asks_for_it(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        "upstreams: {m: {provider: mock}}\nroutes: [{match: '*', upstream: m}]\n"
        "listeners: {http: {server: uvicorn}}\n"
    )
    for args, uvicorn in (((), False), (("--config", str(config)), True)):
        run = subprocess.run(
            [sys.executable, "-c", SERVE, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result == {"answers": ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "uvicorn": uvicorn}, args


def test_http_origin_is_where_a_client_reaches_the_http_door() -> None:
    assert http_origin(Listeners(), 8080) == "http://127.0.0.1:8080"
    assert http_origin(Listeners(host="10.0.0.7"), 8081) == "http://10.0.0.7:8081"
    # A wildcard bind answers on loopback (the pod's app, for a sidecar).
    assert http_origin(Listeners(host="0.0.0.0"), 8080) == "http://127.0.0.1:8080"
    assert http_origin(Listeners(host="::"), 8080) == "http://[::1]:8080"
    assert http_origin(Listeners(host="fd00::1"), 8080) == "http://[fd00::1]:8080"
    public = Listeners(http=HttpListener(public_origin="https://sidecar.example"))
    assert http_origin(public, 8080) == "https://sidecar.example"
    assert http_origin(public, None) == http_origin(Listeners(), None) == ""  # the door is off
