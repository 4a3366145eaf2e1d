"""A fake OpenAI-compatible chat-completions server in a background thread, for tests.

Strict like OpenAI's own server: every request body is checked against the chat-completions
schema (``check_request``) and anything unknown, misplaced or ill-typed gets the 400
``invalid_request_error`` a strict server sends, so a translation bug fails a test instead of
being ignored. It records every request and answers with a ``Plan``: a JSON completion, a
scripted list of stream chunks (golden traces), an HTTP error, an in-stream ``{"error": ...}``
chunk, an abrupt close, or silence.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import ThreadedServer

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOP_LEVEL = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "stop",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "response_format",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
    }
)
_ROLE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "refusal", "name", "tool_calls"},
    "tool": {"role", "content", "tool_call_id"},
}


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _keys(obj: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise BadRequest(f"Unrecognized request argument supplied: {path}{key}", f"{path}{key}")


def _type(value: Any, kind: type | tuple[type, ...], path: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise BadRequest(f"Invalid type for '{path}': got {type(value).__name__}", path)


def _obj(value: Any, path: str) -> dict[str, Any]:
    _type(value, dict, path)
    return value  # type: ignore[no-any-return]


def _parts(content: Any, path: str, allowed: set[str]) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise BadRequest(f"Invalid '{path}': expected a string or a non-empty array of content parts", path)
    for i, part in enumerate(content):
        ppath = f"{path}[{i}]"
        part = _obj(part, ppath)
        ptype = part.get("type")
        if ptype not in allowed:
            raise BadRequest(
                f"Invalid value for '{ppath}.type': {ptype!r} is not supported here", f"{ppath}.type"
            )
        if ptype == "text":
            _keys(part, {"type", "text"}, f"{ppath}.")
            _type(part.get("text"), str, f"{ppath}.text")
        elif ptype == "refusal":
            _keys(part, {"type", "refusal"}, f"{ppath}.")
            _type(part.get("refusal"), str, f"{ppath}.refusal")
        elif ptype == "image_url":
            _keys(part, {"type", "image_url"}, f"{ppath}.")
            image = _obj(part.get("image_url"), f"{ppath}.image_url")
            _keys(image, {"url", "detail"}, f"{ppath}.image_url.")
            url = image.get("url")
            _type(url, str, f"{ppath}.image_url.url")
            if not (url.startswith(("http://", "https://")) or re.match(r"^data:image/[a-z]+;base64,", url)):
                raise BadRequest(f"Invalid image URL in '{ppath}.image_url.url'", f"{ppath}.image_url.url")
        elif ptype == "file":
            _keys(part, {"type", "file"}, f"{ppath}.")
            file = _obj(part.get("file"), f"{ppath}.file")
            _keys(file, {"file_data", "file_id", "filename"}, f"{ppath}.file.")
            if "file_data" not in file and "file_id" not in file:
                raise BadRequest(f"'{ppath}.file' needs file_data or file_id", f"{ppath}.file")


def _tool_calls(calls: Any, path: str) -> list[str]:
    if not isinstance(calls, list) or not calls:
        raise BadRequest(f"Invalid '{path}': expected a non-empty array", path)
    ids: list[str] = []
    for i, call in enumerate(calls):
        cpath = f"{path}[{i}]"
        call = _obj(call, cpath)
        _keys(call, {"id", "type", "function"}, f"{cpath}.")
        _type(call.get("id"), str, f"{cpath}.id")
        if call.get("type") != "function":
            raise BadRequest(f"Invalid value for '{cpath}.type'", f"{cpath}.type")
        function = _obj(call.get("function"), f"{cpath}.function")
        _keys(function, {"name", "arguments"}, f"{cpath}.function.")
        _type(function.get("name"), str, f"{cpath}.function.name")
        _type(function.get("arguments"), str, f"{cpath}.function.arguments")
        json.loads(function["arguments"])  # must be JSON text
        ids.append(call["id"])
    return ids


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages"
        )
    pending: list[str] = []  # tool_call ids still to be answered
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        message = _obj(message, path)
        role = message.get("role")
        if role not in _ROLE_KEYS:
            raise BadRequest(f"Invalid value for '{path}.role': {role!r}", f"{path}.role")
        _keys(message, _ROLE_KEYS[role], f"{path}.")
        if role == "tool":
            tool_call_id = message.get("tool_call_id")
            _type(tool_call_id, str, f"{path}.tool_call_id")
            if tool_call_id not in pending:
                raise BadRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"{path}.role",
                )
            pending.remove(tool_call_id)
            _parts(message.get("content"), f"{path}.content", {"text"})
            continue
        if pending:
            raise BadRequest(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"{path}.role",
            )
        if role in ("system", "developer"):
            _parts(message.get("content"), f"{path}.content", {"text"})
        elif role == "user":
            _parts(message.get("content"), f"{path}.content", {"text", "image_url", "file", "input_audio"})
        else:
            if "tool_calls" in message:
                pending = _tool_calls(message["tool_calls"], f"{path}.tool_calls")
            content = message.get("content")
            if content is None and "tool_calls" not in message:
                raise BadRequest(f"Missing required parameter: '{path}.content'.", f"{path}.content")
            if content is not None:
                _parts(content, f"{path}.content", {"text", "refusal"})
    if pending:
        raise BadRequest(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            "messages",
        )


def check_request(body: Any, *, accept_top_k: bool = False, max_tokens_field: str | None = None) -> None:
    """Raise ``BadRequest`` unless ``body`` is a valid chat-completions request for a strict server."""
    body = _obj(body, "body")
    _keys(body, _TOP_LEVEL | ({"top_k"} if accept_top_k else set()), "")
    if "model" not in body:
        raise BadRequest("Missing required parameter: 'model'.", "model")
    _type(body["model"], str, "model")
    if "messages" not in body:
        raise BadRequest("Missing required parameter: 'messages'.", "messages")
    _messages(body["messages"])
    if "max_tokens" in body and "max_completion_tokens" in body:
        raise BadRequest("max_tokens and max_completion_tokens cannot both be set", "max_tokens")
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body:
            _type(body[key], int, key)
            if body[key] < 1:
                raise BadRequest(f"Invalid '{key}': integer below minimum value.", key)
            if max_tokens_field is not None and key != max_tokens_field:
                raise BadRequest(
                    f"Unsupported parameter: '{key}' is not supported with this model. Use '{max_tokens_field}' instead.",
                    key,
                )
    if "stream" in body:
        _type(body["stream"], bool, "stream")
    if "stream_options" in body:
        if body.get("stream") is not True:
            raise BadRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
            )
        options = _obj(body["stream_options"], "stream_options")
        _keys(options, {"include_usage", "include_obfuscation"}, "stream_options.")
        _type(options.get("include_usage", False), bool, "stream_options.include_usage")
    if "temperature" in body:
        _type(body["temperature"], (int, float), "temperature")
        if not 0 <= body["temperature"] <= 2:
            raise BadRequest("Invalid 'temperature': must be between 0 and 2.", "temperature")
    if "top_p" in body:
        _type(body["top_p"], (int, float), "top_p")
        if not 0 <= body["top_p"] <= 1:
            raise BadRequest("Invalid 'top_p': must be between 0 and 1.", "top_p")
    if "top_k" in body:
        _type(body["top_k"], int, "top_k")
    if "n" in body and body["n"] != 1:
        raise BadRequest("This fake serves n=1 only.", "n")
    if "stop" in body:
        stop = body["stop"]
        if isinstance(stop, list):
            if len(stop) > 4:
                raise BadRequest(
                    "Invalid 'stop': array too long. Expected an array with maximum length 4.", "stop"
                )
            for i, s in enumerate(stop):
                _type(s, str, f"stop[{i}]")
        else:
            _type(stop, str, "stop")
    if "user" in body:
        _type(body["user"], str, "user")
    names: list[str] = []
    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list) or not tools:
            raise BadRequest("Invalid 'tools': empty array.", "tools")
        for i, tool in enumerate(tools):
            tpath = f"tools[{i}]"
            tool = _obj(tool, tpath)
            _keys(tool, {"type", "function"}, f"{tpath}.")
            if tool.get("type") != "function":
                raise BadRequest(f"Invalid value for '{tpath}.type'", f"{tpath}.type")
            function = _obj(tool.get("function"), f"{tpath}.function")
            _keys(function, {"name", "description", "parameters", "strict"}, f"{tpath}.function.")
            name = function.get("name")
            _type(name, str, f"{tpath}.function.name")
            if not _NAME.match(name):
                raise BadRequest(
                    f"Invalid '{tpath}.function.name': string does not match pattern.",
                    f"{tpath}.function.name",
                )
            if "description" in function:
                _type(function["description"], str, f"{tpath}.function.description")
            if "parameters" in function:
                params = _obj(function["parameters"], f"{tpath}.function.parameters")
                if params.get("type", "object") != "object":
                    raise BadRequest(
                        f"Invalid schema for function '{name}': type must be object",
                        f"{tpath}.function.parameters",
                    )
            if "strict" in function:
                _type(function["strict"], bool, f"{tpath}.function.strict")
            names.append(name)
    if "tool_choice" in body:
        if not names:
            raise BadRequest(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        choice = body["tool_choice"]
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                raise BadRequest(f"Invalid value for 'tool_choice': {choice!r}", "tool_choice")
        else:
            choice = _obj(choice, "tool_choice")
            _keys(choice, {"type", "function"}, "tool_choice.")
            function = _obj(choice.get("function"), "tool_choice.function")
            _keys(function, {"name"}, "tool_choice.function.")
            if choice.get("type") != "function" or function.get("name") not in names:
                raise BadRequest("Invalid value for 'tool_choice': no such function", "tool_choice")
    if "parallel_tool_calls" in body:
        if not names:
            raise BadRequest(
                "Invalid value for 'parallel_tool_calls': only allowed when 'tools' are specified.",
                "parallel_tool_calls",
            )
        _type(body["parallel_tool_calls"], bool, "parallel_tool_calls")
    if "reasoning_effort" in body and body["reasoning_effort"] not in (
        "none",
        "minimal",
        "low",
        "medium",
        "high",
    ):
        raise BadRequest(
            f"Invalid value for 'reasoning_effort': {body['reasoning_effort']!r}", "reasoning_effort"
        )
    if "response_format" in body:
        fmt = _obj(body["response_format"], "response_format")
        ftype = fmt.get("type")
        if ftype == "json_schema":
            _keys(fmt, {"type", "json_schema"}, "response_format.")
            schema = _obj(fmt.get("json_schema"), "response_format.json_schema")
            _keys(schema, {"name", "schema", "strict", "description"}, "response_format.json_schema.")
            if not isinstance(schema.get("name"), str) or not _NAME.match(schema["name"]):
                raise BadRequest(
                    "Invalid 'response_format.json_schema.name'", "response_format.json_schema.name"
                )
            _obj(schema.get("schema"), "response_format.json_schema.schema")
        elif ftype in ("text", "json_object"):
            _keys(fmt, {"type"}, "response_format.")
        else:
            raise BadRequest(f"Invalid value for 'response_format.type': {ftype!r}", "response_format.type")


# --- answers ---------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One chat.completion.chunk with a single choice (``extra`` adds top-level or choice keys)."""
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    for key in ("stop_reason", "logprobs"):
        if key in extra:
            choice[key] = extra.pop(key)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": extra.pop("model", "fake-model"),
        "choices": [choice],
        **extra,
    }


def usage_chunk(
    prompt: int, completion: int, cached: int | None = None, reasoning: int | None = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "fake-model",
        "choices": [],
        "usage": usage,
    }


def text_chunks(text: str, *, finish: str = "stop", prompt: int = 11, step: int = 6) -> list[Any]:
    """A plain streamed text answer: role chunk, fragments, finish, usage, [DONE]."""
    out: list[Any] = [chunk({"role": "assistant", "content": ""})]
    for i in range(0, len(text), step):
        out.append(chunk({"content": text[i : i + step]}))
    out.append(chunk({}, finish))
    out.append(usage_chunk(prompt, max(1, len(text) // 4)))
    out.append("[DONE]")
    return out


def accumulate(chunks: list[Any]) -> dict[str, Any]:
    """The non-streaming completion equivalent to a list of chunks (OpenAI's own accumulation)."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    finish: Any = None
    stop_reason: Any = None
    usage: Any = None
    model = "fake-model"
    last_key: Any = None
    for item in chunks:
        if not isinstance(item, dict):
            continue
        model = item.get("model", model)
        if item.get("usage"):
            usage = item["usage"]
        for choice in item.get("choices") or []:
            delta = choice.get("delta") or {}
            for key in ("content", "reasoning_content", "reasoning", "refusal"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            for call in delta.get("tool_calls") or []:
                key = call.get("index")
                if call.get("id") and any(c["id"] == call["id"] for c in calls.values()):
                    key = next(k for k, c in calls.items() if c["id"] == call["id"])
                elif key in calls and call.get("id") and calls[key]["id"] != call["id"]:
                    key = (key, call["id"])
                elif key is None and not call.get("id"):
                    key = last_key
                elif key is None:
                    key = call["id"]
                if key not in calls:
                    calls[key] = {
                        "id": call.get("id"),
                        "type": "function",
                        "function": {"name": "", "arguments": ""},
                    }
                    order.append(key)
                last_key = key
                function = call.get("function") or {}
                if function.get("name") and not calls[key]["function"]["name"]:
                    calls[key]["function"]["name"] = function["name"]
                if function.get("arguments"):
                    calls[key]["function"]["arguments"] += function["arguments"]
            if choice.get("finish_reason") and finish is None:
                finish = choice["finish_reason"]
                stop_reason = choice.get("stop_reason")
    if calls:
        message["tool_calls"] = [calls[k] for k in order]
    choice_out: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    if stop_reason is not None:
        choice_out["stop_reason"] = stop_reason
    completion: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [choice_out],
    }
    if usage is not None:
        completion["usage"] = usage
    return completion


@dataclass
class Plan:
    """How to answer one request."""

    status: int = 200
    completion: dict[str, Any] | None = None  # the JSON answer (default: accumulate(chunks))
    chunks: list[Any] | None = None  # dicts become `data:` lines, "[DONE]" too, bytes go raw
    error: Any = None  # for status >= 400: the `error` object (or raw bytes as the whole body)
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # stream this many chunks, then drop the connection
    hang_after: int | None = None  # stream this many chunks, then go silent until the client leaves
    silence: dict[int, float] = field(default_factory=dict)  # seconds to wait before chunk i
    hang: bool = False  # never answer


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    closed_early: bool = False
    rejected: str | None = None  # the 400 message when the body failed the schema

    def json(self) -> Any:
        return json.loads(self.body)


DEFAULT_TEXT = "Hello from the fake OpenAI upstream."


class FakeOpenAI(ThreadedServer):
    """The server. ``planner`` picks a Plan per request; ``strict`` options shape the schema."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self.planner: Callable[[Recorded], Plan] | None = None
        self.accept_top_k = False
        self.max_tokens_field: str | None = None

    def reset(self, planner: Callable[[Recorded], Plan] | None = None) -> None:
        with self._lock:
            self.requests.clear()
        self.planner = planner
        self.accept_top_k = False
        self.max_tokens_field = None

    @property
    def rejected(self) -> list[str]:
        return [r.rejected for r in self.requests if r.rejected]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.path, dict(request.headers), body)
        with self._lock:
            self.requests.append(rec)
        if request.path == "/v1/models" and request.method == "GET":
            data = [{"id": "fake-model", "object": "model", "created": 1767225600, "owned_by": "fake"}]
            return web.json_response({"object": "list", "data": data})
        if request.path != "/v1/chat/completions" or request.method != "POST":
            return _error(404, {"message": f"Unknown path {request.path}", "type": "invalid_request_error"})
        try:
            parsed = json.loads(body)
            check_request(parsed, accept_top_k=self.accept_top_k, max_tokens_field=self.max_tokens_field)
        except (BadRequest, ValueError) as exc:
            message = (
                exc.message if isinstance(exc, BadRequest) else f"We could not parse the JSON body: {exc}"
            )
            rec.rejected = message
            param = exc.param if isinstance(exc, BadRequest) else None
            return _error(
                400, {"message": message, "type": "invalid_request_error", "param": param, "code": None}
            )
        stream = parsed.get("stream") is True
        plan = self.planner(rec) if self.planner else Plan(chunks=text_chunks(DEFAULT_TEXT))
        if plan.chunks is None and stream and plan.status < 400:
            plan.chunks = text_chunks(DEFAULT_TEXT)
        try:
            return await self._answer(request, plan, stream)
        except (asyncio.CancelledError, ConnectionResetError):
            rec.closed_early = True
            raise

    async def _answer(self, request: web.Request, plan: Plan, stream: bool) -> web.StreamResponse:
        headers = {"x-request-id": "req-openai-fake", **plan.headers}
        if plan.hang:
            await asyncio.sleep(3600)
        if plan.status >= 400:
            if isinstance(plan.error, bytes):
                return web.Response(status=plan.status, body=plan.error, headers=headers)
            error = plan.error or {"message": f"fake error {plan.status}", "type": "server_error"}
            return _error(plan.status, error, headers)
        if not stream:
            completion = plan.completion or accumulate(plan.chunks or text_chunks(DEFAULT_TEXT))
            return web.json_response(completion, headers=headers)
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream", **headers})
        await resp.prepare(request)
        for i, item in enumerate(plan.chunks or []):
            if i in plan.silence:
                await asyncio.sleep(plan.silence[i])
            if plan.hang_after is not None and i == plan.hang_after:
                await asyncio.sleep(3600)
            if plan.cut_after is not None and i == plan.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if isinstance(item, bytes):
                data = item
            elif item == "[DONE]":
                data = b"data: [DONE]\n\n"
            else:
                data = b"data: " + json.dumps(item, separators=(",", ":")).encode() + b"\n\n"
            await resp.write(data)
        if plan.cut_after is not None and plan.cut_after >= len(plan.chunks or []):
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp


def _error(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)
