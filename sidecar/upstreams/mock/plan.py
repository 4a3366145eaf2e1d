"""The answer to one request, decided up front: blocks, stop reason, usage (``Plan``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .config import MockConfig
from .directives import Directives, strip_directives
from .request import (
    choose_tool,
    last_user_text,
    messages_of,
    request_digest,
    text_of,
    thinking_on,
    tool_input_for,
)
from .text import (
    count_words,
    digest,
    estimate_input_tokens,
    find_stop,
    generate_text,
    make_id,
    make_signature,
    split_fragments,
    split_words,
    text_tokens,
)

__all__ = ["Plan", "make_plan"]

# Used when a body has no usable max_tokens (validation normally guarantees one).
_DEFAULT_MAX_TOKENS = 4096


@dataclass(slots=True)
class _Block:
    start: dict[str, Any]  # the content_block_start shell
    deltas: list[dict[str, Any]]
    final: dict[str, Any]  # the block in the whole Message


@dataclass(slots=True)
class Plan:
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


def make_plan(body: dict[str, Any], model: str, config: MockConfig, d: Directives) -> Plan:
    messages = messages_of(body)
    user_text = last_user_text(messages)
    plain_text = strip_directives(user_text).strip()
    request = request_digest(model, body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = _DEFAULT_MAX_TOKENS
    plan = Plan(
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
    thinking, omitted, budget = thinking_on(body)
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

    tool = choose_tool(body, plain_text, d.tool)
    if tool is not None:
        text = f"I'll use the {tool['name']} tool."
    elif d.echo:
        text = plain_text
    else:
        text = generate_text(digest("text", model, plain_text), config.words if d.words is None else d.words)
    prefill = (
        text_of(messages[-1].get("content")) if messages and messages[-1].get("role") == "assistant" else ""
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
        tool_input = tool_input_for(tool)
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
