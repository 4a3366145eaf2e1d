"""OpenAI chat completion (JSON) -> Anthropic Message (a dict), spec section 8.

Pure. The helpers here (stop reason, usage, error mapping) are shared with the streaming state
machine (``openai_stream``), so a streamed answer accumulates to exactly the Message this module
builds from the same completion.

Message content order: a ``thinking`` block (``reasoning_content`` / ``reasoning``, signature
``""``), a ``text`` block (``content``, omitted when empty), a ``text`` block for a ``refusal``,
then one ``tool_use`` block per tool call (``id`` kept, ``input`` parsed from ``arguments``;
empty arguments are ``{}``, arguments that are not a JSON object are an upstream protocol error).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core import new_request_id
from ..core.estimate import TextCounter
from ..core.jsonbytes import BAD_JSON
from ..errors import TYPE_STATUS, SidecarError, UpstreamProtocolError, error_type_for_status

__all__ = [
    "ResponseOptions",
    "error_from_openai",
    "find_stop_sequence",
    "map_finish_reason",
    "message_from_completion",
    "new_tool_id",
    "parse_arguments",
    "ratelimit_headers_from_openai",
    "sidecar_error",
    "usage_from_openai",
]

_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# OpenAI / vLLM / xAI error `type` or `code` strings -> Anthropic error types.
_ERROR_NAMES = {
    "invalid_request_error": "invalid_request_error",
    "badrequesterror": "invalid_request_error",
    "bad_request": "invalid_request_error",
    "context_length_exceeded": "invalid_request_error",
    "authentication_error": "authentication_error",
    "invalid_api_key": "authentication_error",
    "permission_error": "permission_error",
    "permission_denied": "permission_error",
    "not_found_error": "not_found_error",
    "model_not_found": "not_found_error",
    "notfounderror": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "server_error": "api_error",
    "internal_error": "api_error",
    "internalservererror": "api_error",
    "overloaded_error": "overloaded_error",
    "overloaded": "overloaded_error",
    "service_unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "timeout_error": "timeout_error",
}


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    """What the translation needs to know about the request."""

    model: str  # the `model` to report (the requested name, unless configured otherwise)
    input_estimate: int  # local estimate, used when the upstream reports no usage
    stop_sequences: Sequence[str] = ()
    omit_thinking: bool = False  # thinking.display == "omitted": empty thinking text
    model_from_upstream: bool = False  # report the upstream's `model` instead


def new_tool_id() -> str:
    """A ``toolu_`` id for a tool call the upstream sent without one."""
    return new_request_id("toolu_")


def map_finish_reason(finish_reason: object, has_tool_calls: bool) -> str:
    """The Anthropic ``stop_reason`` for a chat-completions ``finish_reason``."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"  # some servers (Ollama, llama.cpp) say "stop" after tool calls
    if isinstance(finish_reason, str):
        return _FINISH.get(finish_reason, "end_turn")
    return "end_turn"


def find_stop_sequence(stop_reason: str, vllm_stop: object, tail: str, stops: Sequence[str]) -> str | None:
    """The stop sequence that ended a ``stop`` finish, when it can be known.

    vLLM names it in ``choices[].stop_reason``; servers that keep it in the output end with it.
    A server that says neither (OpenAI) cannot be told apart from a natural end: ``None``.
    """
    if stop_reason != "end_turn" or not stops:
        return None
    if isinstance(vllm_stop, str) and vllm_stop in stops:
        return vllm_stop
    for seq in stops:
        if seq and tail.endswith(seq):
            return seq
    return None


def usage_from_openai(usage: object, input_estimate: int, output_estimate: int) -> dict[str, Any]:
    """Anthropic usage from a chat-completions ``usage`` (estimates when the upstream sent none)."""
    if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
        return {
            "input_tokens": input_estimate,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_estimate,
        }
    prompt = usage["prompt_tokens"]
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) and 0 <= cached <= prompt else 0
    completion = usage.get("completion_tokens")
    out: dict[str, Any] = {
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion if isinstance(completion, int) else output_estimate,
    }
    cdetails = usage.get("completion_tokens_details")
    reasoning = cdetails.get("reasoning_tokens") if isinstance(cdetails, dict) else None
    if isinstance(reasoning, int):
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


def error_from_openai(error: object, status: int | None = None) -> tuple[str, str]:
    """(Anthropic error type, message) for an OpenAI-style ``error`` object.

    With an HTTP ``status`` the type follows the status (spec section 8 step 7); an in-stream
    error object has none, so its numeric ``code`` (vLLM) or its ``type``/``code`` name decides,
    and ``api_error`` when neither says anything known.
    """
    message = "upstream error"
    if isinstance(error, dict):
        if isinstance(error.get("message"), str) and error["message"]:
            message = error["message"]
    elif isinstance(error, str) and error:
        message = error
    if status is not None:
        return error_type_for_status(status), message
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
            return error_type_for_status(code), message
        for key in ("type", "code"):
            value = error.get(key)
            if isinstance(value, str) and value.lower() in _ERROR_NAMES:
                return _ERROR_NAMES[value.lower()], message
    return "api_error", message


def sidecar_error(
    error_type: str, message: str, headers: list[tuple[str, str]] | None = None
) -> SidecarError:
    """A SidecarError of ``error_type`` with the HTTP status that type stands for."""
    status = TYPE_STATUS.get(error_type, 500)
    return SidecarError(message, error_type=error_type, status=status, headers=headers)


_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?$"
)


def _duration(text: str) -> float | None:
    """OpenAI's reset durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``, or plain seconds)."""
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or match is None:
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0) + parts.get("ms", 0) / 1000


def ratelimit_headers_from_openai(headers: Iterable[tuple[str, str]], now: float) -> list[tuple[str, str]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` as the API's
    ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset: a duration from
    ``now``, epoch seconds, becomes an RFC 3339 time, rounded up to the second). A dimension
    without both a limit and a remaining count is left out."""
    found: dict[str, dict[str, str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname.startswith("x-ratelimit-"):
            part, _, dim = lname[len("x-ratelimit-") :].partition("-")
            if dim in ("requests", "tokens") and part in ("limit", "remaining", "reset"):
                found.setdefault(dim, {})[part] = value.strip()
    out: list[tuple[str, str]] = []
    for dim in ("requests", "tokens"):
        parts = found.get(dim, {})
        if not (parts.get("limit", "").isdigit() and parts.get("remaining", "").isdigit()):
            continue
        out.append((f"anthropic-ratelimit-{dim}-limit", parts["limit"]))
        out.append((f"anthropic-ratelimit-{dim}-remaining", parts["remaining"]))
        after = _duration(parts.get("reset", ""))
        if after is not None:
            moment = datetime.fromtimestamp(math.ceil(now + after - 1e-6), tz=UTC)
            out.append((f"anthropic-ratelimit-{dim}-reset", moment.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return out


def parse_arguments(arguments: str, where: str) -> dict[str, Any]:
    """A tool call's ``arguments`` as the ``tool_use.input`` object."""
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except BAD_JSON:
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"{where}: the upstream sent tool arguments that are not a JSON object")
    return value


def _reasoning(message: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def message_from_completion(
    completion: dict[str, Any], options: ResponseOptions, message_id: str
) -> dict[str, Any]:
    """The Anthropic Message for a chat completion; raises SidecarError for error bodies."""
    if "error" in completion and not completion.get("choices"):
        raise sidecar_error(*error_from_openai(completion["error"]))
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("the upstream's completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamProtocolError("the upstream's completion has no message")
    content: list[dict[str, Any]] = []
    counter = TextCounter()
    reasoning = _reasoning(message)
    if reasoning:
        counter.add(reasoning)
        content.append(
            {"type": "thinking", "thinking": "" if options.omit_thinking else reasoning, "signature": ""}
        )
    text = message.get("content")
    tail = ""
    if isinstance(text, str) and text:
        counter.add(text)
        content.append({"type": "text", "text": text})
        tail = text
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        counter.add(refusal)
        content.append({"type": "text", "text": refusal})
        tail = refusal
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise UpstreamProtocolError(f"choices.0.message.tool_calls.{i}: no function")
        name = function.get("name") or ""
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # a few servers send an object
            arguments = msgspec.json.encode(arguments).decode()
        counter.add(name)
        counter.add(arguments)
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_tool_id(),
                "name": name,
                "input": parse_arguments(arguments, f"choices.0.message.tool_calls.{i}.function.arguments"),
            }
        )
    has_calls = any(b["type"] == "tool_use" for b in content)
    stop_reason = map_finish_reason(choice.get("finish_reason"), has_calls)
    if isinstance(refusal, str) and refusal:
        stop_reason = "refusal"
    stop_sequence = find_stop_sequence(stop_reason, choice.get("stop_reason"), tail, options.stop_sequences)
    if stop_sequence is not None:
        stop_reason = "stop_sequence"
    model = options.model
    if options.model_from_upstream and isinstance(completion.get("model"), str):
        model = completion["model"]
    result: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_from_openai(completion.get("usage"), options.input_estimate, counter.tokens()),
    }
    if stop_reason == "refusal":
        result["stop_details"] = {"type": "refusal"}
    return result
