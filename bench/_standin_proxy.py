"""A minimal pass-through proxy on one of two stacks (``--stack``):

- ``uvicorn`` (the default): uvicorn (uvloop, httptools) raw ASGI + ``aiohttp.ClientSession``, the
  library stack the sidecar first ran on;
- ``native``: the sidecar's own HTTP/1.1 server and upstream pool (``sidecar.http1``) under the
  same ASGI app, so the sidecar minus this proxy is what the sidecar's logic costs on its stack.

Two uses: a stand-in for the sidecar while it is being written, or with ``python -m bench --standin``
(same CLI flags, same ``sidecar http listening on http://127.0.0.1:PORT`` line), and a reference
"library stack" proxy that ``python -m bench`` measures beside nginx and the sidecar in every run (the
"stand-in" rows; ``--standin-stack native`` measures the native one there; perf-facts.md measured
the uvicorn stack at JSON c=32 ratio 0.178, SSE c=32 ratio 0.457).

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from bench._lifetime import until_stopped

if TYPE_CHECKING:
    import aiohttp

# aiohttp and uvicorn are imported by the uvicorn stack only: the native one's memory is its own.

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 32 * 1024 * 1024
# ``--stack`` -> what it is (the bench's report quotes it).
STACKS = {
    "uvicorn": "uvicorn raw ASGI + aiohttp",
    "native": "the sidecar's own server and upstream pool (sidecar.http1)",
}
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


async def _relay(
    send: Send, status: int, headers: Iterable[tuple[str, str]], answer: bytes | AsyncIterator[bytes]
) -> None:
    """The upstream's answer to the client: a whole body with its length, or a stream chunk by
    chunk; hop-by-hop and recomputed headers dropped."""
    out = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers
        if k.lower() not in _DROP_RESPONSE
    ]
    if isinstance(answer, bytes):
        out.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": answer})
        return
    await send({"type": "http.response.start", "status": status, "headers": out})
    async for chunk in answer:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class Proxy:
    """The ASGI application (aiohttp's client; ``NativeProxy``: ours)."""

    def __init__(self, upstream: str, upstream_key: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.upstream_key = upstream_key
        self.session: aiohttp.ClientSession | None = None

    @property
    def ready(self) -> bool:
        return self.session is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        for _ in range(4):  # startup, shutdown
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                import aiohttp

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
        if not path.startswith("/v1/") or not self.ready:
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
        await self._forward(scope["method"], url, headers, b"".join(chunks), send)

    async def _forward(self, method: str, url: str, headers: dict[str, str], body: bytes, send: Send) -> None:
        import aiohttp

        assert self.session is not None
        try:
            async with self.session.request(method, url, data=body, headers=headers) as resp:
                sse = resp.content_type == "text/event-stream"
                answer = resp.content.iter_any() if sse else await resp.read()
                await _relay(send, resp.status, resp.headers.items(), answer)
        except aiohttp.ClientError as exc:
            msg_text = f"upstream error: {type(exc).__name__}"
            await self._simple(send, 502, _error(502, "api_error", msg_text))


class NativeProxy(Proxy):
    """The same app forwarding with the sidecar's upstream pool (``sidecar.http1.client``)."""

    def __init__(self, upstream: str, upstream_key: str) -> None:
        from sidecar.http1.client import HTTPClient

        super().__init__(upstream, upstream_key)
        self.client = HTTPClient()

    @property
    def ready(self) -> bool:
        return True

    async def _forward(self, method: str, url: str, headers: dict[str, str], body: bytes, send: Send) -> None:
        from sidecar.errors import SidecarError  # the pool's errors: connect, protocol, timeouts

        try:
            resp = await self.client.request(method, url, headers=list(headers.items()), body=body)
        except SidecarError as exc:
            await self._simple(send, 502, _error(502, "api_error", f"upstream error: {type(exc).__name__}"))
            return
        sse = resp.headers.get("content-type", "").startswith("text/event-stream")
        await _relay(send, resp.status, resp.headers.items(), resp.chunks() if sse else await resp.read())


async def _serve_native(args: argparse.Namespace) -> None:
    """``--stack native``: the sidecar's server (``sidecar.http1.server``) serving ``NativeProxy``."""
    import socket

    from sidecar.http1.server import App, HttpServer

    proxy = NativeProxy(args.upstream, args.upstream_key)
    # The server's App type takes dict scopes and messages; this app reads them as mappings.
    server = HttpServer(cast("App", proxy), cancel_on_disconnect=True)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.http_port))
    sock.listen(1024)
    sock.setblocking(False)
    await server.start(sock)
    print(f"sidecar http listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    await until_stopped(args.max_seconds)  # bounded like the uvicorn stack
    await server.shutdown(1.0)
    await proxy.client.aclose()


async def _serve(args: argparse.Namespace) -> None:
    import uvicorn

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
    p.add_argument(
        "--stack",
        choices=STACKS,
        default="uvicorn",
        help="uvicorn + aiohttp, or the sidecar's own server and upstream pool (native)",
    )
    args = p.parse_args(argv)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve_native(args) if args.stack == "native" else _serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
