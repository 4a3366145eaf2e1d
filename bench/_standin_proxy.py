"""A minimal pass-through proxy: uvicorn (uvloop, httptools) raw ASGI + ``aiohttp.ClientSession``.

Two uses: a stand-in for the sidecar while it is being written, or with ``python -m bench --standin``
(same CLI flags, same ``sidecar http listening on http://127.0.0.1:PORT`` line), and a reference
"library stack" proxy that ``python -m bench`` measures beside nginx and the sidecar in every run (the
"stand-in" rows; perf-facts.md measured this stack at JSON c=32 ratio 0.178, SSE c=32 ratio 0.457).

It forwards ``/v1/*`` to ``--upstream`` with the client's credential replaced by ``--upstream-key``
and streams the answer back chunk by chunk. No validation, no translation, no retries.

    python -m bench._standin_proxy --upstream http://127.0.0.1:UPORT --upstream-key K --http-port 0 --no-grpc

It has no gRPC door (``--grpc-port`` is accepted and ignored): the bench's gRPC rows are skipped with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 32 * 1024 * 1024
# Request headers forwarded to the upstream (the credential is replaced).
_FORWARD = frozenset(
    {
        b"anthropic-version",
        b"anthropic-beta",
        b"content-type",
        b"accept",
        b"user-agent",
        b"anthropic-workspace-id",
        b"anthropic-user-profile-id",
        b"traceparent",
        b"tracestate",
    }
)
# Response headers not copied back (hop-by-hop, or recomputed by uvicorn).
_DROP_RESPONSE = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
)


def _error(status: int, etype: str, message: str) -> bytes:
    return (
        b'{"type":"error","error":{"type":"' + etype.encode() + b'","message":"' + message.encode() + b'"}}'
    )


class Proxy:
    """The ASGI application."""

    def __init__(self, upstream: str, upstream_key: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.upstream_key = upstream_key
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        for _ in range(4):  # startup, shutdown
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                    auto_decompress=False,
                    skip_auto_headers=("User-Agent", "Accept-Encoding"),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=600),
                )
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _simple(self, send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if not path.startswith("/v1/") or self.session is None:
            await self._simple(send, 404, _error(404, "not_found_error", "Not found"))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:  # bounded by MAX_BODY
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > MAX_BODY:
                await self._simple(send, 413, _error(413, "request_too_large", "Request too large"))
                return
            chunks.append(body)
            more = msg.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _FORWARD}
        headers["x-api-key"] = self.upstream_key
        url = self.upstream + path
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            async with self.session.request(
                scope["method"], url, data=b"".join(chunks), headers=headers
            ) as resp:
                out_headers = [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in resp.headers.items()
                    if k.lower() not in _DROP_RESPONSE
                ]
                if resp.content_type == "text/event-stream":
                    await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
                    async for chunk in resp.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                else:
                    data = await resp.read()
                    out_headers.append((b"content-length", str(len(data)).encode()))
                    await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
                    await send({"type": "http.response.body", "body": data})
        except aiohttp.ClientError as exc:
            msg_text = f"upstream error: {type(exc).__name__}"
            await self._simple(send, 502, _error(502, "api_error", msg_text))


async def _serve(args: argparse.Namespace) -> None:
    config = uvicorn.Config(
        Proxy(args.upstream, args.upstream_key),
        host=args.host,
        port=args.http_port,
        loop="none",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=1024,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    loop = asyncio.get_running_loop()
    for _ in range(500):  # up to 10 s for startup
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if not server.started:
        server.should_exit = True
        await task
        raise SystemExit("stand-in proxy failed to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"sidecar http listening on http://{args.host}:{port}", flush=True)
    # Bounded: uvicorn exits on SIGTERM/SIGINT; also when the parent dies or after --max-seconds.
    parent = os.getppid()
    deadline = loop.time() + args.max_seconds
    while not task.done():
        if loop.time() >= deadline or os.getppid() != parent:
            server.should_exit = True
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
    await task


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._standin_proxy", description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="http://host:port of the Anthropic-compatible upstream")
    p.add_argument("--upstream-key", required=True, help="credential sent upstream as x-api-key")
    p.add_argument("--http-port", type=int, default=0, help="0 = pick a free port (printed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--no-grpc", action="store_true", help="accepted for CLI compatibility (no gRPC here)")
    p.add_argument("--grpc-port", type=int, help="accepted for CLI compatibility (no gRPC here)")
    p.add_argument("--max-seconds", type=float, default=7200.0, help="exit after this long (safety bound)")
    args = p.parse_args(argv)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
