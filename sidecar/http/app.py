"""The HTTP door: a plain ASGI callable that looks like api.anthropic.com to the SDKs.

No framework on the proxy path (perf-facts: Starlette added 1.7 ms and halved throughput). This
module owns the HTTP wire: body limits, content types, framing, status codes, headers, and the
client's disconnect, which cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import msgspec

from ..batches import PREFIX as BATCHES
from ..batches import Batches
from ..core import Answer, Call, ForwardRequest, RequestObserver, encode_sse, grammar, new_request_id
from ..core.aio import current_task
from ..core.credentials import add_header
from ..core.jsonbytes import BAD_JSON
from ..errors import InvalidRequest, NotFound, RequestTooLarge, SidecarError, error_body
from ..files import PREFIX as FILES
from ..files import Files
from ..http1.server import CANCEL_ON_DISCONNECT
from ..lifecycle import Lifecycle, shutdown_error
from ..pipeline import Pipeline, page_models
from ..telemetry import NOOP_TELEMETRY, Telemetry
from .health import HEALTH_PATHS, health, lifespan

__all__ = ["HttpApp"]

log = logging.getLogger("sidecar.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
JSON = b"application/json"
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
# Client request headers that never go upstream: hop-by-hop, or about the body we send.
_DROP_REQUEST = frozenset(
    {
        b"host",
        b"content-length",
        b"content-type",
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"accept-encoding",
        b"expect",
    }
)
# Beyond Messages, bodies of other endpoints (batches, files) may be larger: the API's own limits.
_FORWARD_MAX_BODY = 512 * 1024 * 1024
# Bodies up to this size are read whole before they are relayed; larger ones stream through.
_FORWARD_WHOLE = 1 << 20


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent."""


class _Request:
    __slots__ = (
        "forward_headers",
        "header_map",
        "pipeline",
        "request_id",
        "scope",
        "server_cancels",
        "started",
    )

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.request_id = new_request_id()
        self.started = False  # the response status line has been sent
        self.pipeline: Pipeline | None = None  # the config snapshot of a tracked API call
        # Our server cancels the app's task when the client leaves (scope extension).
        extensions = scope.get("extensions")
        self.server_cancels = extensions is not None and CANCEL_ON_DISCONNECT in extensions
        headers = scope["headers"]
        self.header_map = header_map = dict(headers)  # a repeated header: its last value
        if len(header_map) == len(headers):
            self.forward_headers = {
                key.decode("latin-1"): value.decode("latin-1")
                for key, value in headers
                if key not in _DROP_REQUEST
            }
        else:  # a header sent twice: a repeated credential is combined (add_header)
            forward: dict[str, str] = {}
            for key, value in headers:
                if key not in _DROP_REQUEST:
                    add_header(forward, key.decode("latin-1"), value.decode("latin-1"))
            self.forward_headers = forward


class HttpApp:
    """The ASGI application. The pipeline is read per request, so a reload can swap it."""

    def __init__(
        self,
        get_pipeline: Callable[[], Pipeline],
        *,
        max_body: int,
        ready: Callable[[], bool],
        telemetry: Telemetry = NOOP_TELEMETRY,
        lifecycle: Lifecycle | None = None,
        batches: Batches | None = None,
        files: Files | None = None,
    ) -> None:
        self._get_pipeline = get_pipeline
        # Message Batches run or forwarded by the sidecar; None: relayed like other endpoints.
        self._batches = batches
        # The Files API stored by the sidecar (when the config's files.store is local).
        self._files = files
        self._lifecycle = lifecycle
        self.max_body = max_body
        self._ready = ready
        self._telemetry = telemetry

    @property
    def max_request_body(self) -> int:
        """The largest body any route accepts: the server refuses a larger content-length
        before reading it (each route checks its own limit)."""
        return max(self.max_body, _FORWARD_MAX_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        req = _Request(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        lifecycle = self._lifecycle if path.startswith("/v1/") else None
        if lifecycle is not None:
            # An API call: counted for the drain, pinned to the config snapshot it starts with.
            req.pipeline = lifecycle.enter()
        try:
            if path == "/v1/messages" or path == "/v1/messages/count_tokens":
                if method != "POST":
                    raise SidecarError(
                        f"{method} {path} is not allowed; use POST",
                        status=405,
                        error_type="invalid_request_error",
                    )
                await self._call(req, receive, send, path.endswith("count_tokens"))
            elif path == "/v1/models" or path.startswith("/v1/models/"):
                if method != "GET":
                    raise SidecarError(
                        f"{method} {path} is not allowed; use GET",
                        status=405,
                        error_type="invalid_request_error",
                    )
                await self._models(req, path, send)
            elif self._batches is not None and (path == BATCHES or path.startswith(BATCHES + "/")):
                await self._batch(req, self._batches, receive, send)
            elif (
                self._files is not None
                and (path == FILES or path.startswith(FILES + "/"))
                and (req.pipeline or self._get_pipeline()).files_local
            ):
                await self._file(req, self._files, receive, send)
            elif path.startswith("/v1/"):
                await self._forward(req, receive, send)
            elif path in HEALTH_PATHS:
                status, body = health(path, self._ready)
                await _send_answer(send, Answer(status=status, raw=body), req)
            else:
                raise NotFound(f"Not found: {method} {path}")
        except ClientGone:
            pass
        except SidecarError as exc:
            if not req.started:
                await _send_error(send, exc, req)
        except Exception:
            log.exception("unexpected error handling %s %s (request %s)", method, path, req.request_id)
            if not req.started:
                await _send_error(send, SidecarError("Internal server error"), req)
        finally:
            if lifecycle is not None:
                lifecycle.leave()

    async def _race(
        self, work: Awaitable[None], req: _Request, receive: Receive, *, reads_body: bool = False
    ) -> None:
        """Await ``work``; if the client disconnects first, cancel it (closing the upstream).

        Under our own server (scope extension ``sidecar.cancel_on_disconnect``) the server
        cancels this task when the client goes away. Elsewhere (uvicorn, httpx's ASGITransport),
        once the body has been read, one watcher task per request, the only reader of
        ``receive`` then, cancels this task when the client goes away; unless ``work`` reads
        the body itself (``reads_body``: it then sees a disconnect as ``ClientGone``).
        """
        if reads_body or req.server_cancels:
            try:
                await work
            except asyncio.CancelledError:
                self._drain_cut()
                raise
            return
        task = current_task()
        assert task is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await work
        except asyncio.CancelledError:
            if gone:
                task.uncancel()
                raise ClientGone from None
            if self._lifecycle is not None and self._lifecycle.cut:
                # The drain deadline passed before an answer: a retryable 529.
                task.uncancel()
                raise shutdown_error() from None
            raise
        finally:
            watcher.cancel()

    def _drain_cut(self) -> None:
        """This task was cancelled: if by the drain deadline (not by the client leaving), raise
        the retryable 529 it answers instead."""
        task = current_task()
        assert task is not None
        if self._lifecycle is not None and self._lifecycle.cut and task.cancelling() == 1:
            task.uncancel()
            raise shutdown_error() from None

    async def _read_body(self, req: _Request, receive: Receive, limit: int) -> bytes:
        _declared_length(req, limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _call(self, req: _Request, receive: Receive, send: Send, count_tokens: bool) -> None:
        # Telemetry sees the request from its arrival to its last byte, whatever ends it.
        observer = self._telemetry.begin("http", req.scope["path"], req.forward_headers)
        observer.identify(req.request_id)
        try:
            ctype = req.header_map.get(b"content-type")
            if ctype is not None and not ctype.split(b";", 1)[0].strip().lower().endswith(JSON):
                raise InvalidRequest(
                    f"content-type must be application/json, got {ctype.decode('latin-1')!r}"
                )
            call = _new_call(req, await self._read_body(req, receive, self.max_body), count_tokens, observer)
            if req.server_cancels:
                # Our server cancels this task if the client leaves: no watcher needed.
                try:
                    await self._answer(call, req, send)
                except asyncio.CancelledError:
                    self._drain_cut()
                    raise
            else:
                await self._race(self._answer(call, req, send), req, receive)
        except (ClientGone, asyncio.CancelledError):
            observer.finish(cancelled=True)
            raise
        except BaseException as exc:
            observer.finish(exc)
            raise
        observer.finish()

    async def _answer(self, call: Call, req: _Request, send: Send) -> None:
        pipeline = req.pipeline or self._get_pipeline()
        answer = await (
            pipeline.count_tokens(call) if call.endpoint == "count_tokens" else pipeline.messages(call)
        )
        pipeline.server_timing(call, answer)
        if answer.events is not None:
            await self._stream(req, answer, send)
        else:
            await _send_answer(send, answer, req)

    async def _stream(self, req: _Request, answer: Answer, send: Send) -> None:
        events = answer.events
        assert events is not None
        headers = _answer_headers(answer, req, SSE_HEADERS)
        check = grammar.stream_check(f"http {req.request_id}") if grammar.CHECK_LOG else None
        if check is not None:  # test mode (SIDECAR_CHECK_STREAMS): the grammar of what is sent
            send = check.wrap(send)
        # Not `finally`: a compiled await there re-raises the caller's handled exception (setup.py).
        try:
            req.started = True
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            try:
                # Events that arrived together leave together: one write per upstream read.
                async for batch in events.batches():
                    if len(batch) == 1:
                        body = batch[0].encode()
                    else:
                        body = b"".join([event.encode() for event in batch])
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            except asyncio.CancelledError:
                if self._lifecycle is None or not self._lifecycle.cut:
                    raise
                # The drain deadline passed mid-stream: end it with a retryable error event.
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                payload = shutdown_error().body(req.request_id)
                await send(
                    {"type": "http.response.body", "body": encode_sse("error", payload), "more_body": True}
                )
            except SidecarError as exc:
                # The status is already sent: the failure becomes the spec's `error` event.
                payload = exc.body(exc.request_id or req.request_id)
                await send(
                    {"type": "http.response.body", "body": encode_sse("error", payload), "more_body": True}
                )
            except Exception:
                log.exception("stream failed (request %s)", req.request_id)
                payload = error_body("api_error", "Internal server error", req.request_id)
                await send(
                    {"type": "http.response.body", "body": encode_sse("error", payload), "more_body": True}
                )
            # Release the upstream before the last write: once the response is complete,
            # uvicorn reports a disconnect, and nothing may be left to await after that.
            await events.aclose()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except BaseException:
            if check is not None:
                check.abandon()
            await events.aclose()
            raise
        if check is not None:
            check.abandon()

    async def _models(self, req: _Request, path: str, send: Send) -> None:
        pipeline = req.pipeline or self._get_pipeline()
        if path == "/v1/models" or path == "/v1/models/":
            query = parse_qs(req.scope.get("query_string", b"").decode("latin-1"))
            limit_text = query.get("limit", ["20"])[-1]
            if not limit_text.isdigit():
                raise InvalidRequest("limit: Input should be a valid integer")
            models = await pipeline.list_models(req.forward_headers)
            page = page_models(
                models,
                int(limit_text),
                query.get("after_id", [None])[-1],
                query.get("before_id", [None])[-1],
                query.get("lifecycle[]", []) + query.get("lifecycle", []),
            )
            await _send_json(send, 200, page, req)
        else:
            info = await pipeline.get_model(path[len("/v1/models/") :], req.forward_headers)
            await _send_json(send, 200, info, req)

    async def _forward(self, req: _Request, receive: Receive, send: Send) -> None:
        length = _declared_length(req, _FORWARD_MAX_BODY)
        body: bytes | AsyncIterator[bytes]
        if (length is not None and length > _FORWARD_WHOLE) or (
            length is None and b"chunked" in (req.header_map.get(b"transfer-encoding") or b"").lower()
        ):
            # A large body (a file upload to the upstream's Files API, up to 500 MB) is relayed
            # as it arrives, never held whole: with its content-length when the client gave one.
            body = _BodyChunks(receive, _FORWARD_MAX_BODY)
        else:
            body = await self._read_body(req, receive, _FORWARD_MAX_BODY)
        query = req.scope.get("query_string", b"")
        path = req.scope["path"] + ("?" + query.decode("latin-1") if query else "")
        headers = dict(req.forward_headers)
        ctype = req.header_map.get(b"content-type")
        if ctype is not None:
            headers["content-type"] = ctype.decode("latin-1")
        forward = ForwardRequest(
            method=req.scope["method"],
            path=path,
            headers=headers,
            body=body,
            request_id=req.request_id,
            length=length if not isinstance(body, bytes) else None,
        )
        await self._race(
            self._relay(forward, req, send), req, receive, reads_body=not isinstance(body, bytes)
        )

    async def _batch(self, req: _Request, batches: Batches, receive: Receive, send: Send) -> None:
        headers = dict(req.forward_headers)
        path: str = req.scope["path"]
        creating = req.scope["method"] == "POST" and not path[len(BATCHES) :].strip("/")
        body: AsyncIterator[bytes]
        if creating:
            # A create is read as it arrives (up to 256 MB), never whole: the body goes to the
            # batch as it comes, and a disconnect while it is read ends it (ClientGone) with
            # nothing stored.
            _declared_length(req, batches.config.max_body_bytes)
            body = _BodyChunks(receive)
        else:
            await self._read_body(req, receive, 1 << 20)
            body = _BodyChunks(None)

        async def answer() -> None:
            answer = await batches.handle(
                req.pipeline or self._get_pipeline(),
                req.scope["method"],
                path,
                req.scope.get("query_string", b"").decode("latin-1"),
                headers,
                body,
                _origin(req),
            )
            if answer.chunks is not None:
                await _send_chunks(send, answer, req)
            else:
                await _send_answer(send, answer, req)

        await self._race(answer(), req, receive, reads_body=creating)

    async def _file(self, req: _Request, files: Files, receive: Receive, send: Send) -> None:
        headers = dict(req.forward_headers)
        for name in (b"content-type", b"content-length"):
            value = req.header_map.get(name)
            if value is not None:
                headers[name.decode()] = value.decode("latin-1")
        pipeline = req.pipeline or self._get_pipeline()
        method: str = req.scope["method"]
        query = req.scope.get("query_string", b"").decode("latin-1")
        if method == "POST" and req.scope["path"].rstrip("/") == FILES:
            # An upload goes to disk as it arrives, never whole in memory; a disconnect while
            # it is read ends it (ClientGone) with nothing stored.
            uploaded = await files.handle(
                pipeline.admission, method, req.scope["path"], query, headers, _BodyChunks(receive)
            )
            await _send_answer(send, uploaded, req)
            return
        await self._read_body(req, receive, 1 << 20)

        async def answer() -> None:
            answer = await files.handle(
                pipeline.admission, method, req.scope["path"], query, headers, _BodyChunks(None)
            )
            if answer.chunks is not None:
                await _send_chunks(send, answer, req)
            else:
                await _send_answer(send, answer, req)

        await self._race(answer(), req, receive)

    async def _relay(self, forward: ForwardRequest, req: _Request, send: Send) -> None:
        answer = await (req.pipeline or self._get_pipeline()).forward(forward)
        if answer.chunks is not None:
            await _send_chunks(send, answer, req)
            return
        if req.scope["path"].startswith("/v1/messages/batches") and answer.raw:
            answer.raw = _rewrite_results_url(answer.raw, _origin(req))
        await _send_answer(send, answer, req)


def _new_call(req: _Request, raw: bytes, count_tokens: bool, observer: RequestObserver) -> Call:
    """The Messages (or count_tokens) call of a JSON request body."""
    try:
        body = _decode(raw)
    except RecursionError:
        raise InvalidRequest("request body is not valid JSON: nested too deeply") from None
    except BAD_JSON as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        model = ""
    stream = body.get("stream") is True
    return Call(
        endpoint="count_tokens" if count_tokens else "messages",
        body=body,
        raw=raw,
        model=model,
        stream=stream and not count_tokens,
        request_id=req.request_id,
        door="http",
        headers=req.forward_headers,
        requested_model=model,
        observer=observer,
        # The SDK's timeout bounds each read: for a JSON answer that is the whole wait, for
        # a stream only the gaps (which the route's idle timeout covers).
        deadline=None if stream else _client_deadline(req.header_map.get(b"x-stainless-timeout")),
    )


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")


def _declared_length(req: _Request, limit: int) -> int | None:
    """The body's ``content-length``, if the client gave a readable one; over ``limit`` it is
    refused before a byte is read."""
    declared = req.header_map.get(b"content-length")
    if declared is None or not declared.isdigit():
        return None
    length = int(declared)
    if length > limit:
        raise _too_large(limit)
    return length


class _BodyChunks:
    """The request body as it arrives (``receive`` None: a body already read, nothing more),
    refused past ``limit`` bytes when one is given (our own server refuses it first; uvicorn does
    not); ``ClientGone`` when the client leaves. An async iterator class rather than an async
    generator, so that mypyc compiles this module (``setup.py``)."""

    __slots__ = ("_limit", "_receive", "_size")

    def __init__(self, receive: Receive | None, limit: int | None = None) -> None:
        self._receive = receive
        self._limit = limit
        self._size = 0

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        while self._receive is not None:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._receive = None
                raise ClientGone
            if not message.get("more_body", False):
                self._receive = None  # the last part: nothing more to receive
            chunk: bytes = message.get("body", b"")
            if chunk:
                self._size += len(chunk)
                if self._limit is not None and self._size > self._limit:
                    self._receive = None
                    raise _too_large(self._limit)
                return chunk
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._receive = None


def _client_deadline(value: bytes | None) -> float | None:
    """The SDK's own timeout (``x-stainless-timeout``, seconds) as a deadline: no point in
    working for a client that has given up. Anything but a positive number is ignored."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return time.monotonic() + seconds if 0 < seconds < 1e7 else None


def _origin(req: _Request) -> str:
    host = req.header_map.get(b"host")
    if host:
        return f"{req.scope.get('scheme', 'http')}://{host.decode('latin-1')}"
    server = req.scope.get("server") or ("127.0.0.1", 80)
    return f"{req.scope.get('scheme', 'http')}://{server[0]}:{server[1]}"


def _rewrite_results_url(raw: bytes, origin: str) -> bytes:
    """Point batch ``results_url``s at the sidecar: the SDK GETs them as given."""
    if b"results_url" not in raw:
        return raw
    try:
        data = _decode(raw)
    except BAD_JSON:
        return raw
    listed = data.get("data") if isinstance(data, dict) else None
    items: list[Any] = listed if isinstance(listed, list) else [data]
    changed = False
    for item in items:
        url = item.get("results_url") if isinstance(item, dict) else None
        if isinstance(url, str) and "/v1/" in url:
            item["results_url"] = origin + url[url.index("/v1/") :]
            changed = True
    return _encode(data) if changed else raw


def _answer_headers(
    answer: Answer, req: _Request, defaults: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    pairs = answer.headers
    names = {key for key, _ in pairs}
    if defaults is SSE_HEADERS:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs if k != "content-type"]
        headers.extend(defaults)
    else:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
        if "content-type" not in names:
            headers.extend(defaults)
    request_id = req.request_id.encode()
    if "request-id" not in names:
        headers.append((b"request-id", request_id))
    headers.append((b"sidecar-request-id", request_id))
    return headers


async def _send_answer(send: Send, answer: Answer, req: _Request) -> None:
    body = answer.body_bytes()
    headers = _answer_headers(answer, req, [(b"content-type", JSON)])
    headers.append((b"content-length", str(len(body)).encode()))
    req.started = True
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_chunks(send: Send, answer: Answer, req: _Request) -> None:
    """A relayed body streamed as it arrives (chunked); a failure mid-body cuts the connection."""
    assert answer.chunks is not None
    # Not `finally`: a compiled await there re-raises the caller's handled exception (setup.py).
    try:
        headers = _answer_headers(answer, req, [(b"content-type", b"application/octet-stream")])
        req.started = True
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        async for chunk in answer.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if answer.close is not None:
            await answer.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except BaseException:
        if answer.close is not None:
            await answer.close()
        raise


async def _send_json(send: Send, status: int, data: dict[str, Any], req: _Request) -> None:
    await _send_answer(send, Answer(status=status, message=data), req)


async def _send_error(send: Send, exc: SidecarError, req: _Request) -> None:
    request_id = exc.request_id or req.request_id
    body = _encode(exc.body(request_id))
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    headers.append((b"request-id", request_id.encode()))
    headers.append((b"sidecar-request-id", req.request_id.encode()))
    for key, value in exc.headers:
        if key not in ("content-type", "content-length", "request-id"):
            headers.append((key.encode("latin-1"), value.encode("latin-1")))
    if isinstance(exc, RequestTooLarge):
        # The rest of an oversized body is not read: the connection cannot be reused.
        headers.append((b"connection", b"close"))
    req.started = True
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
