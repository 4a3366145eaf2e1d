"""The ``openai`` adapter: OpenAI-compatible ``/v1/chat/completions`` servers behind the Messages API.

Requests are translated by ``sidecar.translate.openai_request`` (a 400 naming the field for what
cannot be expressed), answers by ``openai_response`` and streams by the ``openai_stream`` state
machine, so an Anthropic SDK sees a faithful Messages API (README: "OpenAI-compatible upstreams").
``count_tokens`` is answered locally (``sidecar.core.estimate``), after the same translation check
as ``messages`` (a request one refuses, the other refuses too).

Streams: the upstream's ``data:`` lines are parsed as they arrive and each read's events leave
as one batch; a ``ping`` event goes out whenever the upstream has been silent for
``ping_interval`` seconds; a stream always ends with ``message_stop`` or an error (an upstream
``{"error": ...}`` chunk, a cut connection or a read timeout end it with the mapped error, which
the doors send as the SSE ``error`` event). Closing the stream, or cancelling ``send``, closes the
upstream request at once. Upstream HTTP errors map to Anthropic errors by status (spec section 8
step 7) with ``retry-after``/``retry-after-ms`` copied.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from ..config.model import OpenAIUpstreamConfig
from ..core import Answer, Call, EventStream, StreamEvent, Target, Upstream, new_request_id
from ..core.estimate import estimate_input_tokens
from ..core.jsonbytes import BAD_JSON
from ..errors import (
    NoRoute,
    SidecarError,
    UpstreamError,
    UpstreamProtocolError,
)
from ..translate.openai_request import RequestOptions, to_chat_completions
from ..translate.openai_response import (
    ResponseOptions,
    error_from_openai,
    message_from_completion,
    ratelimit_headers_from_openai,
    sidecar_error,
)
from ..translate.openai_stream import CUT_MESSAGE, StreamTranslator
from .session import ConnectionBroken, ProtocolError, ResponseTimeout, UpstreamResponse, UpstreamSession

__all__ = ["DataLines", "OpenAIUpstream", "completions_url"]

log = logging.getLogger("sidecar.upstreams.openai")

_MAX_ERROR_BODY = 1 << 20
_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*$")
_DRAIN_SECONDS = 0.5  # after message_stop, how long to wait for [DONE]/EOF to keep the connection
_MODELS_FAILED: tuple[type[Exception], ...] = (TimeoutError, *BAD_JSON, SidecarError)


def completions_url(base_url: str) -> str:
    """``base_url`` + ``/v1/chat/completions``, or + ``/chat/completions`` when it ends in ``/v1``."""
    base = base_url.rstrip("/")
    return base + ("/chat/completions" if _VERSIONED.search(base) else "/v1/chat/completions")


class DataLines:
    """Incremental SSE parsing for ``data:`` payloads (OpenAI streams carry nothing else).

    ``feed`` returns the payloads that completed (an event ends at a blank line; a new ``data:``
    line after a whole JSON object also ends it, for servers that omit blank lines); comments,
    ``event:``, ``id:`` and ``retry:`` lines are ignored; ``flush`` returns a payload left at EOF.
    """

    __slots__ = ("_data", "_rest")

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._rest + chunk if self._rest else chunk
        lines = buf.split(b"\n")
        self._rest = lines.pop()
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    out.append(b"\n".join(data))
                    data.clear()
            elif line.startswith(b"data:"):
                value = line[5:]
                if value.startswith(b" "):
                    value = value[1:]
                if data and data[-1].endswith(b"}") and data[0].startswith(b"{"):
                    out.append(b"\n".join(data))
                    data.clear()
                data.append(value)
        return out

    def flush(self) -> list[bytes]:
        out = self.feed(b"\n\n") if self._rest else []
        if self._data:
            out.append(b"\n".join(self._data))
            self._data.clear()
        return out


_PING = {"type": "ping"}


def _events(dicts: list[dict[str, Any]]) -> tuple[list[StreamEvent], SidecarError | None]:
    """StreamEvents for translator output; a trailing ``error`` dict becomes the error to raise."""
    events: list[StreamEvent] = []
    for data in dicts:
        if data["type"] == "error":
            err = data["error"]
            return events, sidecar_error(err["type"], err["message"])
        events.append(StreamEvent(data["type"], data))
    return events, None


class OpenAIUpstream(Upstream):
    provider = "openai"

    def __init__(self, name: str, config: OpenAIUpstreamConfig) -> None:
        super().__init__(name)
        self.config = config
        self.url = completions_url(config.base_url)
        self.options = RequestOptions(
            max_tokens_field=config.max_tokens_field,
            send_top_k=config.send_top_k,
            send_reasoning_effort=config.send_reasoning_effort,
            send_stream_options=config.send_stream_options,
            send_pdf=config.send_pdf,
            system_role=config.system_role,
        )
        self._http = UpstreamSession(name, config, config.base_url)

    def _headers(self, client_headers: dict[str, str], stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": "identity",
        }
        key = self.config.api_key
        if key:
            headers["authorization"] = f"Bearer {key}"
        elif client_headers.get("x-api-key"):
            headers["authorization"] = f"Bearer {client_headers['x-api-key']}"
        elif client_headers.get("authorization"):
            headers["authorization"] = client_headers["authorization"]
        headers.update(self.config.extra_headers)
        return headers

    def _response_options(self, call: Call, target: Target, input_estimate: int) -> ResponseOptions:
        thinking = call.body.get("thinking")
        stops = call.body.get("stop_sequences")
        return ResponseOptions(
            model=(call.requested_model or call.model)
            if self.config.response_model == "requested"
            else target.model,
            input_estimate=input_estimate,
            stop_sequences=tuple(stops) if isinstance(stops, list) else (),
            omit_thinking=isinstance(thinking, dict) and thinking.get("display") == "omitted",
            model_from_upstream=self.config.response_model == "upstream",
        )

    async def send(self, call: Call, target: Target) -> Answer:
        if call.endpoint == "count_tokens":
            # Counted locally, but what messages would refuse on this route is refused here too
            # (the translation is the check; count_tokens has no max_tokens).
            to_chat_completions({**call.body, "max_tokens": 1}, target.model, self.options)
            return Answer(message={"input_tokens": estimate_input_tokens(call.body)}, upstream=self.name)
        if call.endpoint != "messages":
            raise NoRoute(f"upstream {self.name!r} (openai) does not serve {call.endpoint}")
        body = to_chat_completions(call.body, target.model, self.options)
        stream = body.get("stream") is True
        options = self._response_options(call, target, estimate_input_tokens(call.body))
        message_id = new_request_id("msg_")
        resp = await self._http.request(
            "POST",
            self.url,
            headers=self._headers(call.headers, stream),
            data=msgspec.json.encode(body),
            connect_timeout=target.connect_timeout,
        )
        try:
            if resp.status >= 400:
                raise await self._http_error(resp)
            ctype = resp.headers.get("content-type", "")
            limits = ratelimit_headers_from_openai(resp.headers.items(), time.time())
            if stream and ctype.startswith("text/event-stream"):
                translator = StreamTranslator(options, message_id)
                events = EventStream(self._stream(resp, translator), close=_closer(resp))
                return Answer(headers=limits, events=events, upstream=self.name)
            raw = await resp.read()
        except ResponseTimeout as exc:
            resp.close()
            raise self._http.timeout(exc, "did not answer in time") from exc
        except (ConnectionBroken, ProtocolError) as exc:
            resp.close()
            raise UpstreamError(f"upstream {self.name!r} broke the connection: {exc.message}") from exc
        except BaseException:
            resp.close()
            raise
        resp.release()
        completion = self._decode(raw, ctype)
        if stream:
            # A server that ignored `stream: true`: an error body, or nonsense.
            if "error" in completion:
                raise sidecar_error(*error_from_openai(completion["error"]))
            raise UpstreamProtocolError(
                f"upstream {self.name!r} answered a stream request with {ctype or 'no content-type'}"
            )
        log.debug("upstream %r completion %s", self.name, completion.get("id"))
        return Answer(
            headers=limits,
            message=message_from_completion(completion, options, message_id),
            upstream=self.name,
        )

    def _decode(self, raw: bytes, ctype: str) -> dict[str, Any]:
        try:
            value = msgspec.json.decode(raw)
        except BAD_JSON:
            value = None
        if not isinstance(value, dict):
            raise UpstreamProtocolError(
                f"upstream {self.name!r} answered {ctype or 'no content-type'} that is not a JSON object"
            )
        return value

    async def _http_error(self, resp: UpstreamResponse) -> SidecarError:
        data = await resp.read(_MAX_ERROR_BODY)
        try:
            decoded = msgspec.json.decode(data)
        except BAD_JSON:
            decoded = None
        if isinstance(decoded, dict) and "error" in decoded:
            error: object = decoded["error"]
        elif isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
            error = decoded  # {"message": ..., "type": ...} without the envelope (some gateways)
        else:
            text = data[:200].decode("utf-8", "replace").strip()
            error = f"upstream answered HTTP {resp.status}" + (f": {text}" if text else "")
        error_type, message = error_from_openai(error, resp.status)
        headers = [(k, v) for k, v in resp.headers.items() if k in _RELAYED_ERROR_HEADERS]
        headers += ratelimit_headers_from_openai(resp.headers.items(), time.time())
        return sidecar_error(error_type, message, headers)

    async def _stream(self, resp: UpstreamResponse, tr: StreamTranslator) -> AsyncIterator[list[StreamEvent]]:
        """The translated events, batch per upstream read, pings while the upstream is silent."""
        lines = DataLines()
        interval = self.config.ping_interval
        seen_done = False

        def translate(payloads: list[bytes], eof: bool) -> list[dict[str, Any]]:
            nonlocal seen_done
            out: list[dict[str, Any]] = []
            for payload in payloads:
                if payload.strip() == b"[DONE]":
                    seen_done = True
                    out.extend(tr.finish(clean=True))
                    break
                try:
                    value = msgspec.json.decode(payload)
                except BAD_JSON:
                    out.extend(
                        tr.fail("api_error", f"upstream {self.name!r} sent a stream chunk that is not JSON")
                    )
                    break
                out.extend(tr.feed(value))
                if tr.done:
                    break
            if eof:
                out.extend(tr.finish(clean=False))
            return out

        try:
            while not tr.done:
                timer = asyncio.timeout(interval)
                try:
                    async with timer:
                        # Cancelled by the ping timer, a read leaves the response as it was.
                        chunk = await resp.read_chunk()
                except TimeoutError:
                    if timer.expired():
                        yield [StreamEvent("ping", dict(_PING))]
                        continue
                    raise
                events, failure = _events(translate(lines.feed(chunk) if chunk else lines.flush(), not chunk))
                if events:
                    yield events
                if failure is not None:
                    raise self._renamed(failure)
        except ResponseTimeout as exc:
            raise self._http.timeout(exc, "went silent mid-stream") from exc
        except (ConnectionBroken, ProtocolError) as exc:
            # What arrived before the break was read (and translated) before this was raised.
            log.warning("upstream %r broke a stream: %s", self.name, exc)
            events, failure = _events(translate(lines.flush(), True))
            if events:
                yield events
            if failure is not None:  # else the answer had ended (finish_reason seen): keep it
                raise self._renamed(failure) from exc
            return
        if not seen_done and not resp.at_eof:
            await _drain(resp)

    def _renamed(self, failure: SidecarError) -> SidecarError:
        """A cut reported by the translator names this upstream."""
        if failure.message == CUT_MESSAGE:
            failure.message = f"upstream {self.name!r} closed the stream before it ended"
        return failure

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` as ModelInfo objects; empty when it will not say."""
        url = self.url[: -len("/chat/completions")] + "/models"
        headers = self._headers(call_headers, False)
        headers.pop("content-type", None)
        try:
            async with asyncio.timeout(self.config.timeouts.connect):
                async with await self._http.request("GET", url, headers=headers) as resp:
                    if resp.status >= 400:
                        return []
                    page = msgspec.json.decode(await resp.read())
        except _MODELS_FAILED as exc:
            log.info("upstream %r lists no models: %s", self.name, exc)
            return []
        data = page.get("data") if isinstance(page, dict) else None
        models: list[dict[str, Any]] = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                created = item.get("created")
                models.append(
                    {
                        "type": "model",
                        "id": item["id"],
                        "display_name": item["id"],
                        "created_at": _rfc3339(created)
                        if isinstance(created, int)
                        else "1970-01-01T00:00:00Z",
                    }
                )
        return models

    def connections(self) -> tuple[int, int] | None:
        return self._http.connections()

    async def aclose(self) -> None:
        await self._http.aclose()


def _rfc3339(seconds: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _drain(resp: UpstreamResponse) -> None:
    """Read what follows ``message_stop`` (``[DONE]``, EOF) briefly, so the connection is reused."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while await resp.read_chunk():
                pass
    except (TimeoutError, SidecarError):
        pass


def _closer(resp: UpstreamResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # close() ends an unfinished stream's upstream request now; a finished one is released.
        resp.close()

    return close
