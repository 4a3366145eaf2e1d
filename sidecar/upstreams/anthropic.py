"""The ``anthropic`` adapter: the real API, or anything that speaks it (another sidecar too).

Pass-through by design: the client's original body bytes are sent when nothing changed them,
``anthropic-version``/``anthropic-beta`` and every other end-to-end header go through verbatim,
and SSE bytes are relayed as they arrive (each event also parsed, lazily, for whoever needs it).
The HTTP client is ``sidecar.http1.client`` (HTTP/1.1 on httptools), its pool built by
``sidecar.upstreams.session``; the adapter sees only the session's ``UpstreamResponse``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ..config import AnthropicUpstreamConfig
from ..core import Answer, Call, EventStream, ForwardRequest, StreamEvent, Target, Upstream, event_name
from ..core.jsonbytes import BAD_JSON, replace_member
from ..core.sse import SSESplitter
from ..errors import (
    SidecarError,
    UpstreamError,
    UpstreamProtocolError,
    error_type_for_status,
)
from .session import ConnectionBroken, ProtocolError, ResponseTimeout, UpstreamResponse, UpstreamSession

__all__ = ["AnthropicUpstream", "relay_headers"]

log = logging.getLogger("sidecar.upstreams.anthropic")

# Response headers never relayed: hop-by-hop, or describing a body we re-frame.
_DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "proxy-authenticate",
        "trailer",
        "upgrade",
        "vary",
        "via",
        "alt-svc",
        "set-cookie",
        "cf-ray",
        "cf-cache-status",
    }
)
_MAX_ERROR_BODY = 1 << 20
_BAD_PAGE: tuple[type[Exception], ...] = (*BAD_JSON, KeyError, TypeError)  # a model list page
_TERMINAL = frozenset({"message_stop", "error"})
_FIRST_TOKEN = "content_block_delta"
_DEFAULT_VERSION = "2023-06-01"
_ENDPOINT_PATHS = {"messages": "/v1/messages", "count_tokens": "/v1/messages/count_tokens"}


def relay_headers(headers: Any) -> list[tuple[str, str]]:
    """The upstream response headers a client should see (lower-case names)."""
    return [(name, value) for key, value in headers.items() if (name := key.lower()) not in _DROP_RESPONSE]


# Every lifecycle stage: the sidecar filters by the client's ``lifecycle[]`` itself (spec section 7).
_MODELS_QUERY = "/v1/models?limit=1000&lifecycle[]=active&lifecycle[]=deprecated&lifecycle[]=retired"


def _error_from_response(status: int, body: bytes, headers: list[tuple[str, str]]) -> SidecarError:
    """An upstream error answer as the sidecar's error, keeping the upstream's type and words."""
    error_type = error_type_for_status(status)
    message = f"upstream answered HTTP {status}"
    details = None
    try:
        decoded = msgspec.json.decode(body)
    except BAD_JSON:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), dict):
        err = decoded["error"]
        if isinstance(err.get("type"), str):
            error_type = err["type"]
        if isinstance(err.get("message"), str):
            message = err["message"]
        if isinstance(err.get("details"), dict):
            details = err["details"]
    elif body:
        message = f"{message}: {body[:200].decode('utf-8', 'replace')}"
    request_id = next((v for k, v in headers if k == "request-id"), None)
    relayed = [(k, v) for k, v in headers if k not in ("content-type",)]
    return SidecarError(
        message, status=status, error_type=error_type, headers=relayed, details=details, request_id=request_id
    )


class AnthropicUpstream(Upstream):
    provider = "anthropic"

    def __init__(self, name: str, config: AnthropicUpstreamConfig) -> None:
        super().__init__(name)
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._http = UpstreamSession(
            name,
            config,
            self.base_url,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    def _headers(self, client_headers: dict[str, str]) -> dict[str, str]:
        headers = dict(client_headers)
        if self.config.api_key:
            headers.pop("authorization", None)
            headers["x-api-key"] = self.config.api_key
        headers.setdefault("anthropic-version", _DEFAULT_VERSION)
        # Uncompressed, so every SSE event can be relayed the moment it arrives.
        headers["accept-encoding"] = "identity"
        return headers

    async def send(self, call: Call, target: Target) -> Answer:
        body = call.raw
        if body is None:
            body = msgspec.json.encode({**call.body, "model": target.model})
        elif target.model != call.model:
            body = replace_member(body, "model", target.model)
        headers = self._headers(call.headers)
        headers["content-type"] = "application/json"
        resp = await self._http.request(
            "POST",
            self.base_url + _ENDPOINT_PATHS[call.endpoint],
            headers=headers,
            data=body,
            connect_timeout=target.connect_timeout,
        )
        try:
            relayed = relay_headers(resp.headers)
            if resp.status >= 400:
                data = await resp.read(_MAX_ERROR_BODY)
                raise _error_from_response(resp.status, data, relayed)
            ctype = resp.headers.get("content-type", "")
            if call.stream and ctype.startswith("text/event-stream"):
                stream = EventStream(self._events(resp), close=self._closer(resp))
                return Answer(status=resp.status, headers=relayed, events=stream, upstream=self.name)
            raw = await resp.read()
        except (ResponseTimeout, ConnectionBroken, ProtocolError) as exc:
            resp.close()
            raise self._body_error(exc) from exc
        except BaseException:
            resp.close()
            raise
        resp.release()
        if not ctype.startswith("application/json"):
            raise UpstreamProtocolError(
                f"upstream {self.name!r} answered {ctype or 'no content-type'}, not JSON"
            )
        return Answer(status=resp.status, headers=relayed, raw=raw, upstream=self.name)

    def _body_error(self, exc: SidecarError) -> SidecarError:
        """A failure while a whole body was read, named for this upstream."""
        if isinstance(exc, ResponseTimeout):
            return self._http.timeout(exc, "did not answer in time")
        return UpstreamError(f"upstream {self.name!r} broke the connection: {exc.message}")

    @staticmethod
    def _closer(resp: UpstreamResponse) -> Any:
        async def close() -> None:
            # close() ends an unfinished stream's upstream request now; a finished one is released.
            resp.close()

        return close

    def _events(self, resp: UpstreamResponse) -> AsyncIterator[list[StreamEvent]]:
        """Relay the upstream's events as they arrive; a stream that stops before its end
        (``message_stop`` or ``error``) ends with an error, so no client is left guessing."""
        return _Events(self, resp)

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        headers = self._headers(call_headers)
        models: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(20):  # bounded: 20 pages of 1000
            url = self.base_url + _MODELS_QUERY + (f"&after_id={after}" if after else "")
            resp = await self._http.request("GET", url, headers=headers)
            try:
                data = await resp.read()
                if resp.status >= 400:
                    raise _error_from_response(resp.status, data, relay_headers(resp.headers))
            except (ResponseTimeout, ConnectionBroken, ProtocolError) as broken:
                raise self._body_error(broken) from broken
            finally:
                resp.release()
            try:
                page = msgspec.json.decode(data)
                models.extend(m for m in page["data"] if isinstance(m, dict))
            except _BAD_PAGE as bad:
                raise UpstreamProtocolError(f"upstream {self.name!r} sent a malformed model list") from bad
            if not page.get("has_more") or not page.get("last_id"):
                break
            after = page["last_id"]
        return models

    async def forward(self, request: ForwardRequest) -> Answer:
        headers = self._headers(request.headers)
        resp = await self._http.request(
            request.method,
            self.base_url + request.path,
            headers=headers,
            data=request.body or None,
            length=request.length,
        )
        relayed = relay_headers(resp.headers)
        try:
            if resp.status >= 400:
                raise _error_from_response(resp.status, await resp.read(_MAX_ERROR_BODY), relayed)
            if resp.headers.get("content-type", "").startswith("application/json"):
                # Small JSON answers (batches, file metadata) are read whole: the door may
                # rewrite URLs in them.
                data = await resp.read()
                resp.release()
                return Answer(status=resp.status, headers=relayed, raw=data, upstream=self.name)
        except (ResponseTimeout, ConnectionBroken, ProtocolError) as exc:
            resp.close()
            raise self._body_error(exc) from exc
        except BaseException:
            resp.close()
            raise
        # Anything else (file content, batch results as JSON Lines) is streamed through.
        return Answer(
            status=resp.status,
            headers=relayed,
            chunks=self._chunks(resp),
            close=self._closer(resp),
            upstream=self.name,
        )

    def _chunks(self, resp: UpstreamResponse) -> AsyncIterator[bytes]:
        return _Chunks(self, resp)

    def connections(self) -> tuple[int, int] | None:
        return self._http.connections()

    async def aclose(self) -> None:
        await self._http.aclose()


class _Events:
    """``AnthropicUpstream._events``: the stream's events in batches, one per upstream read, except
    that until the first content delta a batch ends with it (it goes out before the rest of its
    read is parsed). The bytes that arrived before a break come first, so nothing sent is lost.
    An async iterator class rather than an async generator, so that mypyc compiles this module
    (``setup.py``); once it raised or ended, it stays ended."""

    __slots__ = ("_done", "_ended", "_eof", "_head", "_resp", "_rest", "_splitter", "_upstream")

    def __init__(self, upstream: AnthropicUpstream, resp: UpstreamResponse) -> None:
        self._upstream = upstream
        self._resp = resp
        self._splitter = SSESplitter()
        self._head = True  # until the first content delta: batches end with it
        self._rest = False  # the rest of a read whose head went out is still in the splitter
        self._eof = False  # the body ended (and the splitter was flushed)
        self._ended = False  # a terminal event (message_stop, error) passed
        self._done = False

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        if self._done:
            raise StopAsyncIteration
        try:
            batch = await self._batch()
        except BaseException:
            self._done = True
            raise
        if batch is None:
            self._done = True
            if not self._ended:
                raise UpstreamError(f"upstream {self._upstream.name!r} ended the stream without message_stop")
            raise StopAsyncIteration
        if not self._ended:
            self._ended = not _TERMINAL.isdisjoint(map(event_name, batch))
        return batch

    async def aclose(self) -> None:
        self._done = True

    async def _batch(self) -> list[StreamEvent] | None:
        """The next batch; None at the body's end."""
        splitter = self._splitter
        upstream = self._upstream
        try:
            while not self._eof:
                if self._rest:
                    self._rest = False
                    events = splitter.feed(b"")
                    if events:
                        return events
                chunk = await self._resp.read_chunk()
                if not chunk:
                    self._eof = True
                    last = splitter.flush()
                    return [last] if last is not None else None
                if self._head:
                    events = splitter.feed_until(chunk, _FIRST_TOKEN)
                    if events and events[-1].name == _FIRST_TOKEN:
                        self._head = False
                        self._rest = True
                    if events:
                        return events
                    continue
                events = splitter.feed(chunk)
                if events:
                    return events
            return None
        except ResponseTimeout as timeout:
            raise upstream._http.timeout(timeout, "went silent mid-stream") from timeout
        except (ConnectionBroken, ProtocolError) as broken:
            log.warning("upstream %r broke a stream: %s", upstream.name, broken)
            raise UpstreamError(f"upstream {upstream.name!r} closed the stream before it ended") from broken


class _Chunks:
    """``AnthropicUpstream._chunks``: a relayed body's chunks as they arrive, its breaks named
    for the upstream (an async iterator class, as ``_Events``)."""

    __slots__ = ("_done", "_resp", "_upstream")

    def __init__(self, upstream: AnthropicUpstream, resp: UpstreamResponse) -> None:
        self._upstream = upstream
        self._resp = resp
        self._done = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        upstream = self._upstream
        try:
            chunk = await self._resp.read_chunk()
        except ResponseTimeout as timeout:
            self._done = True
            raise upstream._http.timeout(timeout, "went silent mid-body") from timeout
        except (ConnectionBroken, ProtocolError) as broken:
            self._done = True
            log.warning("upstream %r broke a body: %s", upstream.name, broken)
            raise UpstreamError(
                f"upstream {upstream.name!r} closed the connection before the body ended"
            ) from broken
        except BaseException:
            self._done = True
            raise
        if not chunk:
            self._done = True
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._done = True
