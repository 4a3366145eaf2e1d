"""The built-in mock model: a deterministic upstream for offline use and tests.

It answers Messages and count_tokens calls without a network or a key. The same request always
gives the same answer, in every process: the text is drawn from a fixed word list with a seed
hashed (SHA-256) from the target model and the last user text, and the message id from the whole
body (without ``stream``), so a streamed answer accumulates to exactly the non-streamed Message.

What it does with a request:

- Text: ``MockConfig.words`` words (or ``[mock words=N]``), in sentences. One word is one output
  token. A request ending in an assistant turn (prefill) gets the continuation only.
- ``max_tokens``: output is cut at that many tokens (thinking first, then text, then a tool call)
  with ``stop_reason: "max_tokens"``; ``0`` gives empty content and ``output_tokens: 0``. A tool
  call that does not fit whole is left out.
- ``stop_sequences``: the text is cut just before the sequence that completes first (earliest
  end; on a tie the earliest start), ``stop_reason: "stop_sequence"``, ``stop_sequence`` set. The
  tokens of the text up to the end of the sequence are counted. Thinking is not searched.
- Tools: one short text block and one ``tool_use`` block (``stop_reason: "tool_use"``) when
  ``tool_choice`` is ``{type: "any"}`` (the first custom tool) or ``{type: "tool", name}``, when
  ``[mock tool=NAME]`` names a custom tool, or when ``tool_choice`` is auto/absent, the request is
  the first turn of its conversation (no ``assistant`` message before the last ``user`` one) and
  the last user text mentions a custom tool's name (the first such tool in ``tools`` order).
  Never with ``{type: "none"}``. A turn whose last user message carries ``tool_result`` blocks is
  answered like a model ending an agent loop: text and ``end_turn``, with no tool call unless
  ``tool_choice`` (any/tool) or a ``[mock tool=NAME]`` directive asks for one. So an agent whose
  every turn names its tools (system reminders, tool results) gets one tool call at most, not a
  loop that never ends. Only custom tools (``type`` absent or ``"custom"``) are called; the input is
  built from ``input_schema``: the required properties (all of them when none is required), with
  ``enum`` -> first value, ``const`` -> it, string -> ``"sample"``, integer -> 1, number -> 1.5,
  boolean -> true, array -> [], null -> null, object -> its required properties (so ``{}``).
- Thinking (``thinking.type`` ``"enabled"`` or ``"adaptive"``): a leading ``thinking`` block of
  ``MockConfig.thinking_words`` words (capped by ``budget_tokens``) and a signature; the text is
  empty with ``display: "omitted"`` but its tokens are still counted.
- Usage: ``input_tokens`` is the estimate of ``_mocktext.estimate_input_tokens`` (text about four
  characters a token, an image 1600, a PDF 1600, tools their JSON text); ``output_tokens`` counts
  thinking words, text words and the tool input's JSON text over four (``max_tokens`` when cut
  there, at least 1 unless ``max_tokens`` is 0); cache fields 0; ``service_tier: "standard"``.
- Timing: ``ttft_ms`` before the first content delta and ``gap_ms`` before each later one; a
  non-streamed answer waits the same total. Every wait is a cancellable ``asyncio.sleep``.

Directives, written anywhere in the text of the last ``user`` message (several may be combined,
in one bracket or many; ``[mock echo words=5]`` works). An unknown key or a bad value is a 400:

==========================================  =========================================================
``[mock words=N]``                          answer with N words instead of ``MockConfig.words``
``[mock echo]``                             answer with the last user text, directives removed
``[mock tool=NAME]``                        call the custom tool NAME (unless tool_choice is none)
``[mock error=TYPE]``                       fail before answering with that error: an Anthropic
                                            error type (``overloaded_error`` -> 529,
                                            ``rate_limit_error`` -> 429 with ``retry-after: 1``,
                                            ``api_error`` -> 500, ...) or an HTTP status
                                            (``error=503``); count_tokens fails too
``[mock stream_error=TYPE after=N]``        streaming: after N content deltas (default 0) send an
                                            SSE ``error`` event and end, with no ``message_stop``;
                                            a non-streamed call raises the error instead
``[mock ttft_ms=MS gap_ms=MS]``             override the configured timing for this request
``[mock words_per_delta=N]``                words per ``text_delta``/``thinking_delta``
==========================================  =========================================================

The seed ignores the directives, so ``[mock words=50] hi`` starts with the words of ``hi``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core import Answer, Call, EventStream, StreamEvent, Target, Upstream
from ..errors import (
    ERROR_TYPES,
    AuthenticationFailed,
    BillingError,
    ConfigError,
    Conflict,
    InvalidRequest,
    NoRoute,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    SidecarError,
    Timeout,
    UpstreamError,
    error_type_for_status,
)
from ._mocktext import (
    count_words,
    digest,
    display_name,
    estimate_input_tokens,
    find_stop,
    generate_text,
    make_id,
    make_signature,
    sample_input,
    split_fragments,
    split_words,
    text_tokens,
)

__all__ = ["DEFAULT_MODELS", "MockConfig", "MockUpstream"]

#: Model ids the mock lists by default (it answers any model name).
DEFAULT_MODELS: tuple[str, ...] = (
    "mock-1",
    "claude-sonnet-4-6",
    "claude-opus-4-8",
    "claude-haiku-4-5-20251001",
)

# ModelInfo values shared by every listed model.
_CREATED_AT = "2025-01-01T00:00:00Z"
_MAX_INPUT_TOKENS = 200_000
_MAX_TOKENS = 64_000
# Used when a body has no usable max_tokens (validation normally guarantees one).
_DEFAULT_MAX_TOKENS = 4096
# Directive value limits, so a typo cannot ask for a gigabyte of text or a day of waiting.
_MAX_WORDS = 1_000_000
_MAX_MS = 3_600_000

_DIRECTIVE = re.compile(r"\[mock(?=[\s\]])([^\]]*)\]")
_DIRECTIVE_STRIP = re.compile(r"\s*\[mock(?=[\s\]])[^\]]*\]")
_NAME_WORD = re.compile(r"[A-Za-z0-9_-]+")

# Anthropic error type -> (class, message) for the error directives.
_ERRORS: dict[str, tuple[type[SidecarError], str]] = {
    "invalid_request_error": (InvalidRequest, "mock: invalid request"),
    "authentication_error": (AuthenticationFailed, "invalid x-api-key"),
    "billing_error": (BillingError, "Your credit balance is too low to access the Anthropic API."),
    "permission_error": (
        PermissionDenied,
        "Your API key does not have permission to use the specified resource.",
    ),
    "not_found_error": (NotFound, "Not found"),
    "conflict_error": (Conflict, "Conflict"),
    "request_too_large": (RequestTooLarge, "Request exceeds the maximum allowed number of bytes."),
    "rate_limit_error": (RateLimited, "Number of request tokens has exceeded your per-minute rate limit."),
    "api_error": (UpstreamError, "Internal server error"),
    "timeout_error": (Timeout, "Request timed out"),
    "overloaded_error": (Overloaded, "Overloaded"),
}

# The sleep every wait goes through (a module global so tests can record the waits).
_sleep = asyncio.sleep


@dataclass(frozen=True, slots=True, kw_only=True)
class MockConfig:
    """Settings of one mock upstream; every field has a default, so ``MockConfig()`` works."""

    #: Answer length in words (= output tokens) when no ``[mock words=N]`` directive is given.
    words: int = 24
    #: Milliseconds before the first content delta (and before a non-streamed answer).
    ttft_ms: float = 0
    #: Milliseconds between content deltas.
    gap_ms: float = 0
    #: Words per text_delta / thinking_delta event.
    words_per_delta: int = 3
    #: Length of the thinking block in words when thinking is on (capped by ``budget_tokens``).
    thinking_words: int = 16
    #: Model ids returned by ``list_models``; a list is accepted and kept as a tuple.
    models: Sequence[str] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        for name in ("words", "words_per_delta", "thinking_words"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"mock: {name} must be a non-negative integer, not {value!r}")
        if self.words_per_delta < 1:
            raise ConfigError("mock: words_per_delta must be at least 1")
        for name in ("ttft_ms", "gap_ms"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"mock: {name} must be a non-negative number, not {value!r}")
        if isinstance(self.models, str) or not all(isinstance(m, str) and m for m in self.models):
            raise ConfigError("mock: models must be a list of non-empty strings")
        object.__setattr__(self, "models", tuple(self.models))


# --- directives ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Directives:
    words: int | None = None
    echo: bool = False
    tool: str | None = None
    error: str | None = None  # an error type, or "type:status" when a status was given
    stream_error: str | None = None
    after: int = 0
    ttft_ms: float | None = None
    gap_ms: float | None = None
    words_per_delta: int | None = None


def _int_value(key: str, value: str | None, low: int, high: int) -> int:
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"mock directive {key} needs an integer from {low} to {high}, not {value!r}")
    return int(value)


def _error_value(key: str, value: str | None) -> str:
    if value is None:
        raise InvalidRequest(f"mock directive {key} needs an error type, e.g. {key}=overloaded_error")
    if value.isdigit() and 400 <= int(value) <= 599:
        return value
    if value not in _ERRORS:
        raise InvalidRequest(
            f"mock directive {key}={value}: unknown error type (one of {', '.join(_ERRORS)})"
        )
    return value


def _parse_directives(text: str) -> _Directives:
    out = _Directives()
    for match in _DIRECTIVE.finditer(text):
        for item in match.group(1).split():
            key, eq, raw = item.partition("=")
            value = raw if eq else None
            if key == "echo" and value is None:
                out.echo = True
            elif key == "words":
                out.words = _int_value(key, value, 0, _MAX_WORDS)
            elif key == "words_per_delta":
                out.words_per_delta = _int_value(key, value, 1, _MAX_WORDS)
            elif key == "ttft_ms":
                out.ttft_ms = _int_value(key, value, 0, _MAX_MS)
            elif key == "gap_ms":
                out.gap_ms = _int_value(key, value, 0, _MAX_MS)
            elif key == "after":
                out.after = _int_value(key, value, 0, _MAX_WORDS)
            elif key == "tool" and value:
                out.tool = value
            elif key == "error":
                out.error = _error_value(key, value)
            elif key == "stream_error":
                out.stream_error = _error_value(key, value)
            else:
                raise InvalidRequest(f"unknown mock directive {item!r} (see sidecar.upstreams.mock)")
    return out


def _make_error(spec: str) -> SidecarError:
    if spec.isdigit():
        status = int(spec)
        error_type = error_type_for_status(status)
    else:
        error_type = spec
        status = ERROR_TYPES[error_type][0]
    cls, message = _ERRORS[error_type]
    headers = [("retry-after", "1")] if error_type == "rate_limit_error" else None
    return cls(message, status=status, error_type=error_type, headers=headers)


# --- reading the request -----------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _custom_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        t
        for t in tools
        if isinstance(t, dict)
        and t.get("type", "custom") in ("custom", None)
        and isinstance(t.get("name"), str)
    ]


def _first_turn(messages: list[dict[str, Any]]) -> bool:
    """True when no ``assistant`` message comes before the last ``user`` message."""
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), -1)
    return all(m.get("role") != "assistant" for m in messages[:last_user])


def _answers_tool_results(messages: list[dict[str, Any]]) -> bool:
    """True when the last ``user`` message carries ``tool_result`` blocks."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content
            )
    return False


def _choose_tool(body: dict[str, Any], text: str, directive: str | None) -> dict[str, Any] | None:
    tools = _custom_tools(body)
    if not tools:
        return None
    by_name = {t["name"]: t for t in tools}
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "none":
        return None
    if kind == "tool":
        name = choice.get("name") if isinstance(choice, dict) else None
        return by_name.get(name) if isinstance(name, str) else None
    if directive is not None and directive in by_name:
        return by_name[directive]
    if kind == "any":
        return tools[0]
    # Mentions call a tool on a conversation's first turn only: a model given tool results ends
    # the loop, and agents name their tools in every turn.
    messages = _messages(body)
    if not _first_turn(messages) or _answers_tool_results(messages):
        return None
    # A mention is the whole name as a word (tool names are [a-zA-Z0-9_-]{1,128}).
    mentioned = set(_NAME_WORD.findall(text))
    return next((t for t in tools if t["name"] in mentioned), None)


def _tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    schema = tool.get("input_schema")
    return sample_input(schema if isinstance(schema, dict) else {})


def _thinking_on(body: dict[str, Any]) -> tuple[bool, bool, int | None]:
    """(thinking on, display omitted, budget_tokens)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return False, False, None
    budget = thinking.get("budget_tokens")
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0 else None
    return True, thinking.get("display") == "omitted", budget


def _request_digest(model: str, body: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in body.items() if k != "stream"}
    try:
        encoded = msgspec.json.encode(rest, order="sorted")
    except (TypeError, msgspec.EncodeError):
        encoded = repr(sorted(rest.items(), key=lambda kv: kv[0])).encode()
    return digest("request", model, encoded)


# --- the answer ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Block:
    start: dict[str, Any]  # the content_block_start shell
    deltas: list[dict[str, Any]]
    final: dict[str, Any]  # the block in the whole Message


@dataclass(slots=True)
class _Plan:
    """Everything about one answer, decided up front; both the Message and the stream read it."""

    message_id: str
    model: str
    input_tokens: int
    max_tokens: int
    blocks: list[_Block] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    output_tokens: int = 0

    def usage(self, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def message(self, *, started: bool = False) -> dict[str, Any]:
        """The whole Message, or (``started``) the ``message_start`` payload."""
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [] if started else [b.final for b in self.blocks],
            "stop_reason": None if started else self.stop_reason,
            "stop_sequence": None if started else self.stop_sequence,
            "usage": self.usage(min(1, self.max_tokens) if started else self.output_tokens),
        }

    def delta_count(self) -> int:
        return sum(len(b.deltas) for b in self.blocks)


def _chunks(text: str, per_delta: int) -> list[str]:
    pieces = split_words(text)
    return ["".join(pieces[i : i + per_delta]) for i in range(0, len(pieces), per_delta)]


def _text_block(text: str, per_delta: int) -> _Block:
    deltas = [{"type": "text_delta", "text": chunk} for chunk in _chunks(text, per_delta)]
    return _Block({"type": "text", "text": ""}, deltas, {"type": "text", "text": text})


def _thinking_block(text: str, signature: str, per_delta: int) -> _Block:
    deltas: list[dict[str, Any]] = [
        {"type": "thinking_delta", "thinking": c} for c in _chunks(text, per_delta)
    ]
    deltas.append({"type": "signature_delta", "signature": signature})
    start = {"type": "thinking", "thinking": "", "signature": ""}
    return _Block(start, deltas, {"type": "thinking", "thinking": text, "signature": signature})


def _tool_block(tool_id: str, name: str, tool_input: dict[str, Any], input_json: str) -> _Block:
    deltas = [{"type": "input_json_delta", "partial_json": ""}]
    deltas += [{"type": "input_json_delta", "partial_json": f} for f in split_fragments(input_json, 3)]
    start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return _Block(start, deltas, {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})


def _plan(body: dict[str, Any], model: str, config: MockConfig, d: _Directives) -> _Plan:
    messages = _messages(body)
    user_text = _last_user_text(messages)
    plain_text = _DIRECTIVE_STRIP.sub("", user_text).strip()
    request = _request_digest(model, body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = _DEFAULT_MAX_TOKENS
    plan = _Plan(
        message_id=make_id("msg_", request),
        model=model,
        input_tokens=estimate_input_tokens(body),
        max_tokens=max_tokens,
    )
    if max_tokens == 0:
        plan.stop_reason = "max_tokens"
        return plan
    per_delta = d.words_per_delta or config.words_per_delta
    used = 0

    # Thinking comes first and spends the budget first.
    thinking, omitted, budget = _thinking_on(body)
    if thinking:
        wanted = config.thinking_words if budget is None else min(config.thinking_words, budget)
        got = min(wanted, max_tokens)
        text = generate_text(digest("thinking", model, plain_text), wanted, limit=got)
        signature = make_signature(request, text)
        plan.blocks.append(_thinking_block("" if omitted else text, signature, per_delta))
        used += got
        if got < wanted:
            plan.stop_reason = "max_tokens"
            plan.output_tokens = max_tokens
            return plan

    tool = _choose_tool(body, plain_text, d.tool)
    if tool is not None:
        text = f"I'll use the {tool['name']} tool."
    elif d.echo:
        text = plain_text
    else:
        text = generate_text(digest("text", model, plain_text), config.words if d.words is None else d.words)
    prefill = (
        _text_of(messages[-1].get("content")) if messages and messages[-1].get("role") == "assistant" else ""
    )
    if text and prefill and not prefill[-1].isspace():
        text = " " + text

    left = max_tokens - used
    hit = find_stop(text, body.get("stop_sequences"))
    if hit is not None and count_words(text[: hit[1]]) <= left:
        used += count_words(text[: hit[1]])
        text = text[: hit[0]]
        plan.stop_reason, plan.stop_sequence = "stop_sequence", hit[2]
    elif count_words(text) > left:
        text = "".join(split_words(text)[:left])
        plan.stop_reason = "max_tokens"
    else:
        used += count_words(text)
    if text:
        plan.blocks.append(_text_block(text, per_delta))

    if tool is not None and plan.stop_reason == "end_turn":
        tool_input = _tool_input(tool)
        input_json = json.dumps(tool_input, ensure_ascii=False)
        cost = text_tokens(input_json)
        if cost > max_tokens - used:
            plan.stop_reason = "max_tokens"
        else:
            used += cost
            tool_id = make_id("toolu_", request, tool["name"])
            plan.blocks.append(_tool_block(tool_id, tool["name"], tool_input, input_json))
            plan.stop_reason = "tool_use"

    plan.output_tokens = max_tokens if plan.stop_reason == "max_tokens" else max(1, used)
    return plan


# --- streaming -------------------------------------------------------------------------------


def _event(data: dict[str, Any]) -> StreamEvent:
    return StreamEvent(data["type"], data)


async def _wait(ms: float) -> None:
    if ms > 0:
        await _sleep(ms / 1000)


async def _events(
    plan: _Plan, ttft_ms: float, gap_ms: float, fail: SidecarError | None, fail_after: int
) -> AsyncIterator[StreamEvent]:
    """The spec's event grammar for ``plan``; ``fail`` ends it with an ``error`` event instead."""
    fail_event = (
        None
        if fail is None
        else _event({"type": "error", "error": {"type": fail.error_type, "message": fail.message}})
    )
    yield _event({"type": "message_start", "message": plan.message(started=True)})
    sent = 0
    for index, block in enumerate(plan.blocks):
        yield _event({"type": "content_block_start", "index": index, "content_block": block.start})
        if index == 0:
            yield _event({"type": "ping"})
        for delta in block.deltas:
            if fail_event is not None and sent == fail_after:
                yield fail_event
                return
            await _wait(ttft_ms if sent == 0 else gap_ms)
            yield _event({"type": "content_block_delta", "index": index, "delta": delta})
            sent += 1
        yield _event({"type": "content_block_stop", "index": index})
    if not plan.blocks:
        yield _event({"type": "ping"})
    if fail_event is not None:
        yield fail_event
        return
    if sent == 0:
        await _wait(ttft_ms)
    yield _event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
            "usage": {"output_tokens": plan.output_tokens},
        }
    )
    yield _event({"type": "message_stop"})


# --- the upstream ----------------------------------------------------------------------------


class MockUpstream(Upstream):
    """A deterministic built-in model (see the module docstring for what it answers and why)."""

    provider = "mock"

    def __init__(self, name: str, config: MockConfig | None = None) -> None:
        super().__init__(name)
        self.config = config if config is not None else MockConfig()

    async def send(self, call: Call, target: Target) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        directives = _parse_directives(_last_user_text(_messages(body)))
        if directives.error is not None:
            raise _make_error(directives.error)
        if call.endpoint == "count_tokens":
            return Answer(message={"input_tokens": estimate_input_tokens(body)}, upstream=self.name)
        if call.endpoint != "messages":
            raise NoRoute(f"upstream {self.name!r} (mock) does not serve {call.endpoint}")
        plan = _plan(body, target.model, self.config, directives)
        ttft_ms = self.config.ttft_ms if directives.ttft_ms is None else directives.ttft_ms
        gap_ms = self.config.gap_ms if directives.gap_ms is None else directives.gap_ms
        fail = None if directives.stream_error is None else _make_error(directives.stream_error)
        if call.stream:
            events = _events(plan, ttft_ms, gap_ms, fail, directives.after)
            return Answer(events=EventStream.of_events(events), upstream=self.name)
        if fail is not None:
            raise fail
        await _wait(ttft_ms + gap_ms * max(0, plan.delta_count() - 1))
        return Answer(message=plan.message(), upstream=self.name)

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "type": "model",
                "id": model_id,
                "display_name": display_name(model_id),
                "created_at": _CREATED_AT,
                "max_input_tokens": _MAX_INPUT_TOKENS,
                "max_tokens": _MAX_TOKENS,
            }
            for model_id in self.config.models
        ]
