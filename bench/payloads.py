"""Request bodies the benchmarks send, beyond the small ones each builds itself."""

from __future__ import annotations

import random
import string
from typing import Any

__all__ = ["large_request"]


# --- a large request, as a coding agent sends it (perf-facts: ~87 KB, 12 tools) -------------------


def _words(r: random.Random, n: int) -> str:
    return " ".join(
        "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(2, 9))) for _ in range(n)
    )


def large_request(seed: int = 7) -> dict[str, Any]:
    """A deterministic ~87 KB request: 12 tools with JSON schemas, cached system blocks, adaptive
    thinking, a beta field, and 20 tool-use round trips with thinking blocks."""
    r = random.Random(seed)
    tools: list[dict[str, Any]] = []
    for i in range(12):
        props: dict[str, Any] = {}
        for j in range(8):
            props[f"param_{j}"] = {
                "type": r.choice(["string", "integer", "boolean"]),
                "description": _words(r, 25),
            }
        props["options"] = {
            "type": "object",
            "properties": {
                "depth": {"type": "integer", "minimum": 0, "maximum": 10},
                "mode": {"enum": ["a", "b"]},
            },
            "additionalProperties": False,
        }
        tools.append(
            {
                "name": f"tool_{i}",
                "description": _words(r, 120),
                "input_schema": {"type": "object", "properties": props, "required": ["param_0", "param_1"]},
            }
        )
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    messages: list[dict[str, Any]] = [{"role": "user", "content": _words(r, 80)}]
    for t in range(20):
        tid = f"toolu_{t:04d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": _words(r, 30), "signature": "sig" + "x" * 200},
                    {"type": "text", "text": _words(r, 20)},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": f"tool_{t % 12}",
                        "input": {"param_0": _words(r, 4), "param_1": t, "options": {"depth": 2}},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tid,
                        "content": [{"type": "text", "text": _words(r, 200)}],
                    }
                ],
            }
        )
    messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": _words(r, 1200)},
            {"type": "text", "text": _words(r, 300), "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": messages,
        "tools": tools,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "stream": True,
        "metadata": {"user_id": "u-123"},
        "context_management": {
            "edits": [
                {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 100000}}
            ]
        },
    }
