"""The streaming state machine: OpenAI chat-completion chunks -> Anthropic stream events.

Pure and synchronous: ``feed`` one parsed chunk (the JSON of one ``data:`` line), get the
Anthropic event dicts it produces; call ``finish(clean=True)`` at ``data: [DONE]`` (or a clean
end of the body) and ``finish(clean=False)`` when the upstream was cut. The events always obey
the Anthropic grammar (``sidecar.core.grammar``) and always end with ``message_stop`` or
``error``; after either, ``feed`` and ``finish`` return nothing.

Spec section 8, streaming:

1. The first chunk emits ``message_start`` (``input_tokens`` is the local estimate, never 0).
2. ``delta.reasoning_content`` / ``delta.reasoning`` opens a ``thinking`` block; it is closed with
   an empty ``signature_delta`` and ``content_block_stop`` when other content starts.
3. ``delta.content`` opens or continues a ``text`` block; ``delta.refusal`` gets a text block of
   its own and makes the stop reason ``refusal``.
4. ``delta.tool_calls``: a new call (new ``index``, or a new ``id`` on a reused index) opens a
   ``tool_use`` block and its ``arguments`` fragments become ``input_json_delta``s. Calls whose
   fragments interleave are serialised: the first call streams live, later ones are buffered and
   each is sent whole once the live call's arguments form a complete JSON object (or when the
   turn ends). Repeated ids/names, ids only in the first fragment and whole argument strings in
   one chunk are all fine.
5. ``finish_reason`` closes the open block and fixes the stop reason (``stop_sequence`` when
   vLLM's ``stop_reason`` names one of the request's sequences or the text ends with one).
6. ``message_delta`` (stop reason, the upstream's cumulative usage: ``input_tokens`` uncached,
   ``cache_read_input_tokens`` cached, ``output_tokens``, ``output_tokens_details``) and
   ``message_stop`` follow as soon as the finish reason and a usage report after it are both in,
   else at ``finish``; without any usage report the local estimates stand in.
7. A chunk ``{"error": {...}}`` or a cut connection ends the stream with an ``error`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core.estimate import TextCounter
from ..core.jsonbytes import BAD_JSON
from ..errors import UpstreamProtocolError
from .openai_response import (
    ResponseOptions,
    error_from_openai,
    find_stop_sequence,
    map_finish_reason,
    new_tool_id,
    usage_from_openai,
)

__all__ = ["StreamTranslator"]

CUT_MESSAGE = "the upstream closed the stream before it ended"


@dataclass(slots=True)
class _Tool:
    id: str
    name: str
    index: object
    args: list[str] = field(default_factory=list)
    block: int | None = None  # its Anthropic block index, once started
    closed: bool = False
    checked: int = -1  # len(args) when completeness was last checked
    complete: bool = False

    def is_complete(self) -> bool:
        if self.checked != len(self.args):
            self.checked = len(self.args)
            try:
                self.complete = isinstance(msgspec.json.decode("".join(self.args)), dict)
            except BAD_JSON:
                self.complete = False
        return self.complete


def _start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


class StreamTranslator:
    """One streamed answer's translation (see the module docstring)."""

    def __init__(self, options: ResponseOptions, message_id: str) -> None:
        self.options = options
        self.message_id = message_id
        self.started = False
        self.done = False  # message_stop or error emitted
        self._next = 0  # next block index
        self._open = ""  # "", "text", "refusal", "thinking" or "tool"
        self._open_index = -1
        self._tools: list[_Tool] = []
        self._by_index: dict[object, _Tool] = {}
        self._by_id: dict[str, _Tool] = {}
        self._live: _Tool | None = None
        self._last: _Tool | None = None
        self._finished = False
        self._finish_reason: object = None
        self._vllm_stop: object = None
        self._usage: object = None
        self._usage_after_finish = False
        self._refusal = False
        self._counter = TextCounter()
        self._tail = ""
        self._tail_len = max((len(s) for s in options.stop_sequences), default=0)

    # --- public ----------------------------------------------------------------------------

    def feed(self, chunk: object) -> list[dict[str, Any]]:
        """Events for one chunk (a decoded ``data:`` JSON value)."""
        if self.done:
            return []
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError("the upstream sent a stream chunk that is not a JSON object")
        out: list[dict[str, Any]] = []
        if chunk.get("error") is not None:
            error_type, message = error_from_openai(chunk["error"])
            self._fail(out, error_type, message)
            return out
        if not self.started:
            self._message_start(out, chunk.get("model"))
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
            if self._finished:
                self._usage_after_finish = True
        if self._finished and self._usage_after_finish:
            self._end(out)
        return out

    def finish(self, *, clean: bool) -> list[dict[str, Any]]:
        """Events for the end of the upstream body: ``clean`` after ``[DONE]`` or a whole body."""
        if self.done:
            return []
        out: list[dict[str, Any]] = []
        if clean or self._finished:
            if not self.started:
                self._message_start(out, None)
            self._end(out)
        else:
            self._fail(out, "api_error", CUT_MESSAGE)
        return out

    def fail(self, error_type: str, message: str) -> list[dict[str, Any]]:
        """The terminal ``error`` event (for failures the caller detects: timeouts, cuts)."""
        if self.done:
            return []
        out: list[dict[str, Any]] = []
        self._fail(out, error_type, message)
        return out

    # --- message ---------------------------------------------------------------------------

    def _message_start(self, out: list[dict[str, Any]], upstream_model: object) -> None:
        self.started = True
        model = self.options.model
        if self.options.model_from_upstream and isinstance(upstream_model, str) and upstream_model:
            model = upstream_model
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.options.input_estimate,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        }
        out.append({"type": "message_start", "message": message})

    def _end(self, out: list[dict[str, Any]]) -> None:
        self._close_all(out)
        has_tools = bool(self._tools)
        stop_reason = map_finish_reason(self._finish_reason, has_tools)
        if self._refusal:
            stop_reason = "refusal"
        stop_sequence = find_stop_sequence(
            stop_reason, self._vllm_stop, self._tail, self.options.stop_sequences
        )
        if stop_sequence is not None:
            stop_reason = "stop_sequence"
        delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        if stop_reason == "refusal":
            delta["stop_details"] = {"type": "refusal"}
        usage = usage_from_openai(self._usage, self.options.input_estimate, self._counter.tokens())
        out.append({"type": "message_delta", "delta": delta, "usage": usage})
        out.append({"type": "message_stop"})
        self.done = True

    def _fail(self, out: list[dict[str, Any]], error_type: str, message: str) -> None:
        out.append({"type": "error", "error": {"type": error_type, "message": message}})
        self.done = True

    # --- content ---------------------------------------------------------------------------

    def _choice(self, choice: dict[str, Any], out: list[dict[str, Any]]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._thinking(reasoning, out)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text(content, "text", out)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._refusal = True
                self._text(refusal, "refusal", out)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        self._tool_fragment(call, out)
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None and not self._finished:
            self._finished = True
            self._finish_reason = finish_reason
            self._vllm_stop = choice.get("stop_reason")
            self._close_all(out)

    def _open_block(self, kind: str, block: dict[str, Any], out: list[dict[str, Any]]) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        self._open, self._open_index = kind, index
        out.append(_start(index, block))
        return index

    def _close(self, out: list[dict[str, Any]]) -> None:
        """Close the open block; after a tool call, send every buffered call too."""
        kind, self._open = self._open, ""
        if kind == "thinking":
            out.append(_delta(self._open_index, {"type": "signature_delta", "signature": ""}))
            out.append(_stop(self._open_index))
        elif kind in ("text", "refusal"):
            out.append(_stop(self._open_index))
        elif kind == "tool":
            self._close_live(out)
            for tool in self._tools:
                if tool.block is None:
                    self._send_whole(tool, out)

    def _close_all(self, out: list[dict[str, Any]]) -> None:
        """Close the open block and send every call not sent yet (the turn is over)."""
        self._close(out)
        self._live = None
        for tool in self._tools:
            if tool.block is None:
                self._send_whole(tool, out)

    def _thinking(self, text: str, out: list[dict[str, Any]]) -> None:
        if self._open != "thinking":
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        self._counter.add(text)
        if not self.options.omit_thinking:
            out.append(_delta(self._open_index, {"type": "thinking_delta", "thinking": text}))

    def _text(self, text: str, kind: str, out: list[dict[str, Any]]) -> None:
        if self._open != kind:
            self._open_block(kind, {"type": "text", "text": ""}, out)
        self._counter.add(text)
        if self._tail_len:
            self._tail = (self._tail + text)[-self._tail_len :]
        out.append(_delta(self._open_index, {"type": "text_delta", "text": text}))

    # --- tool calls ------------------------------------------------------------------------

    def _find(self, call: dict[str, Any]) -> _Tool | None:
        call_id = call.get("id")
        index = call.get("index")
        if isinstance(call_id, str) and call_id in self._by_id:
            return self._by_id[call_id]
        if index is not None and index in self._by_index:
            tool = self._by_index[index]
            if isinstance(call_id, str) and call_id and call_id != tool.id:
                return None  # a server that reuses index 0 for every call
            return tool
        if index is None and not call_id:
            return self._last
        return None

    def _tool_fragment(self, call: dict[str, Any], out: list[dict[str, Any]]) -> None:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = msgspec.json.encode(args).decode()  # a server that sends an object
        tool = self._find(call)
        if tool is None:
            call_id = call.get("id")
            tool = _Tool(
                call_id if isinstance(call_id, str) and call_id else new_tool_id(), "", call.get("index")
            )
            self._tools.append(tool)
            self._by_id[tool.id] = tool
            self._by_index[tool.index] = tool
            if self._live is None:
                self._live = tool
        self._last = tool
        if isinstance(name, str) and name and not tool.name:
            tool.name = name
            self._counter.add(name)
        if tool.closed:
            if args:
                raise UpstreamProtocolError(
                    f"the upstream sent arguments for tool call {tool.id!r} after it had ended"
                )
            return
        if args:
            tool.args.append(args)
            self._counter.add(args)
        if tool is self._live:
            if tool.block is None and tool.name:
                self._start_tool(tool, out)
                if tool.args:
                    out.append(
                        _delta(
                            self._open_index, {"type": "input_json_delta", "partial_json": "".join(tool.args)}
                        )
                    )
            elif tool.block is not None and args:
                out.append(_delta(self._open_index, {"type": "input_json_delta", "partial_json": args}))
        self._promote(out)

    def _start_tool(self, tool: _Tool, out: list[dict[str, Any]]) -> None:
        tool.block = self._open_block(
            "tool", {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}, out
        )

    def _promote(self, out: list[dict[str, Any]]) -> None:
        """While the live call is complete and others wait, close it and start the next."""
        live = self._live
        while live is not None and live.block is not None:
            waiting = [t for t in self._tools if t.block is None and not t.closed]
            if not waiting or not live.is_complete():
                return
            self._close_live(out)
            self._open = ""
            live = self._live = waiting[0]
            self._start_tool(live, out)
            if live.args:
                out.append(
                    _delta(self._open_index, {"type": "input_json_delta", "partial_json": "".join(live.args)})
                )

    def _close_live(self, out: list[dict[str, Any]]) -> None:
        live = self._live
        if live is not None and live.block is not None and not live.closed:
            live.closed = True
            out.append(_stop(live.block))
        self._live = None

    def _send_whole(self, tool: _Tool, out: list[dict[str, Any]]) -> None:
        """A buffered call as one block: start, all its arguments in one delta, stop."""
        tool.block = self._next
        self._next += 1
        out.append(_start(tool.block, {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}))
        if tool.args:
            out.append(_delta(tool.block, {"type": "input_json_delta", "partial_json": "".join(tool.args)}))
        out.append(_stop(tool.block))
        tool.closed = True
