"""``python -m bench.batch_memory``: the sidecar's peak RSS for one large Message Batches create.

Starts ``python -m sidecar --config`` (``reliability.sidecar_process``) with a batches store in a
temporary directory, sends one ``POST /v1/messages/batches`` of ``--entries`` entries of about
``--entry-bytes`` bytes each (default 100,000 x 2,650 B: 265 MB, just under the 256 MiB limit),
generated while it is sent (this process never holds the body either), and reads the sidecar's
``VmHWM`` (peak resident set) from ``/proc/PID/status`` before and after. Two cases:

- ``local``: every entry routed to the built-in mock, so the batch is stored and run locally;
- ``forward``: every entry routed to an Anthropic upstream (an aiohttp server in this process that
  reads the forwarded body as it comes, counts its entries and answers a batch object), so the
  sidecar forwards the batch, each entry's model renamed by its route.

Also ``--bad-at N``: the entry at index N is invalid (no messages), which must be refused (400)
with nothing stored; ``--redis URL``: the Redis store instead of SQLite. Prints one line per
case; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from aiohttp import web

from reliability.sidecar_process import SidecarProcess, free_port

MODEL = "claude-sonnet-4-6"


def _entry(i: int, size: int, *, bad: bool = False) -> bytes:
    params: dict[str, object] = {"model": "sonnet", "max_tokens": 16}
    if not bad:
        params["messages"] = [{"role": "user", "content": ""}]
    entry = {"custom_id": f"e{i:06d}", "params": params}
    base = len(json.dumps(entry, separators=(",", ":")))
    if not bad:
        params["messages"] = [{"role": "user", "content": "x" * max(size - base, 1)}]
    return json.dumps(entry, separators=(",", ":")).encode()


def body_length(n: int, size: int, bad_at: int | None) -> int:
    inner = sum(len(_entry(i, size, bad=i == bad_at)) for i in range(min(n, 2)))
    # Every entry but the first two has the length of the second (same digits in the id).
    rest = (n - 2) * len(_entry(2, size)) if n > 2 else 0
    if bad_at is not None and bad_at >= 2:
        rest += len(_entry(bad_at, size, bad=True)) - len(_entry(bad_at, size))
    return len(b'{"requests":[') + inner + rest + max(n - 1, 0) + len(b"]}")


async def body(n: int, size: int, bad_at: int | None) -> AsyncIterator[bytes]:
    yield b'{"requests":['
    chunk: list[bytes] = []
    for i in range(n):
        chunk.append((b"," if i else b"") + _entry(i, size, bad=i == bad_at))
        if len(chunk) == 64:
            yield b"".join(chunk)
            chunk.clear()
    yield b"".join(chunk) + b"]}"


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Upstream:
    """An Anthropic stand-in for forwarded creates: reads the body as it comes, counts entries."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received = 0
        self.entries = 0
        self.models: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/v1/messages/batches", self._create)
        app.router.add_get("/v1/messages/batches/{id}", self._get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self._batch())

    async def _create(self, request: web.Request) -> web.Response:
        tail = b""
        while chunk := await request.content.read(1 << 20):
            self.received += len(chunk)
            data = tail + chunk
            self.entries += data.count(b'"custom_id"')
            for model in (b'"model":"' + MODEL.encode() + b'"', b'"model":"sonnet"'):
                if model in data:
                    self.models.add(model.decode())
            tail = data[-64:]
            self.entries -= tail.count(b'"custom_id"')
        self.entries += tail.count(b'"custom_id"')
        return web.json_response(self._batch())

    def _batch(self) -> dict[str, object]:
        return {
            "id": "msgbatch_bench",
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {
                "processing": self.entries,
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": None,
        }


def config_for(
    upstream_url: str | None, max_requests: int, state: str, redis: str | None
) -> Callable[[int, int, int], str]:
    def config(admin: int, http: int, grpc: int) -> str:
        if upstream_url is None:
            upstreams = "  m: {provider: mock}\nroutes:\n  - {match: '*', upstream: m}\n"
        else:
            upstreams = (
                f"  an: {{provider: anthropic, base_url: '{upstream_url}', api_key: sk-bench}}\n"
                "routes:\n  - {match: '*', upstream: an}\n"
            )
        return (
            f"listeners: {{http: {{port: {http}}}, grpc: {{port: {grpc}}}}}\n"
            f"admin: {{port: {admin}}}\n"
            f"upstreams:\n{upstreams}"
            f"aliases: {{sonnet: {MODEL}}}\n"
            f"batches: {{dir: '{state}', concurrency: 1, poll_interval: 5, max_requests: {max_requests}"
            + (f", store: {{kind: redis, url: '{redis}', timeout: 30}}" if redis else "")
            + "}\n"
        )

    return config


async def run_case(name: str, args: argparse.Namespace) -> None:
    upstream = Upstream() if name == "forward" else None
    if upstream is not None:
        await upstream.start()
    url = f"http://127.0.0.1:{upstream.port}" if upstream is not None else None
    state = tempfile.mkdtemp(prefix="sidecar-batch-memory-")
    async with SidecarProcess(config_for(url, args.entries, state, args.redis)) as sc:
        assert sc.proc is not None
        pid = sc.proc.pid
        idle = vm_hwm_kb(pid)
        length = body_length(args.entries, args.entry_bytes, args.bad_at)
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=600) as client:
            r = await client.post(
                sc.http_url + "/v1/messages/batches",
                content=body(args.entries, args.entry_bytes, args.bad_at),
                headers={"content-type": "application/json", "content-length": str(length)},
            )
            took = time.monotonic() - started
            peak = vm_hwm_kb(pid)
            rss = vm_rss_kb(pid)
            listed = (await client.get(sc.http_url + "/v1/messages/batches")).json()
        extra = ""
        if upstream is not None:
            extra = f", upstream got {upstream.received / 1e6:.1f} MB / {upstream.entries} entries, models {sorted(upstream.models)}"
        print(
            f"{name}: {r.status_code} in {took:.1f} s, body {length / 1e6:.1f} MB; "
            f"VmHWM idle {idle / 1024:.1f} MB -> peak {peak / 1024:.1f} MB (VmRSS after {rss / 1024:.1f} MB); "
            f"batches listed {len(listed.get('data', []))}{extra}"
        )
        if r.status_code != 200:
            print("   ", r.text[:300])
        problems = sc.log_problems()
        if problems:
            print("   ", problems[0][:800])
    shutil.rmtree(state, ignore_errors=True)
    if upstream is not None:
        await upstream.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.batch_memory", description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--entry-bytes", type=int, default=2_650)
    p.add_argument("--bad-at", type=int, default=None, help="make the entry at this index invalid")
    p.add_argument("--redis", metavar="URL", help="store batches in this Redis (store kind redis)")
    p.add_argument("cases", nargs="*", help="local, forward (default: both)")
    args = p.parse_args(argv)
    if not set(args.cases) <= {"local", "forward"}:
        p.error("cases: local, forward")
    for case in args.cases or ["local", "forward"]:
        asyncio.run(run_case(case, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
