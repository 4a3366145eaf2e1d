"""Reading a Messages body: its texts, the tool to call, thinking, the digest its ids come from."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .text import digest, sample_input

__all__ = [
    "choose_tool",
    "last_user_text",
    "messages_of",
    "request_digest",
    "text_of",
    "thinking_on",
    "tool_input_for",
]

_NAME_WORD = re.compile(r"[A-Za-z0-9_-]+")


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
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


def choose_tool(body: dict[str, Any], text: str, directive: str | None) -> dict[str, Any] | None:
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
    messages = messages_of(body)
    if not _first_turn(messages) or _answers_tool_results(messages):
        return None
    # A mention is the whole name as a word (tool names are [a-zA-Z0-9_-]{1,128}).
    mentioned = set(_NAME_WORD.findall(text))
    return next((t for t in tools if t["name"] in mentioned), None)


def tool_input_for(tool: dict[str, Any]) -> dict[str, Any]:
    schema = tool.get("input_schema")
    return sample_input(schema if isinstance(schema, dict) else {})


def thinking_on(body: dict[str, Any]) -> tuple[bool, bool, int | None]:
    """(thinking on, display omitted, budget_tokens)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return False, False, None
    budget = thinking.get("budget_tokens")
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0 else None
    return True, thinking.get("display") == "omitted", budget


def request_digest(model: str, body: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in body.items() if k != "stream"}
    try:
        encoded = msgspec.json.encode(rest, order="sorted")
    except (TypeError, msgspec.EncodeError):
        encoded = repr(sorted(rest.items(), key=lambda kv: kv[0])).encode()
    return digest("request", model, encoded)
