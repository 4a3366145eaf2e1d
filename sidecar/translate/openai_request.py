"""Anthropic Messages request (a dict) -> OpenAI ``/v1/chat/completions`` body (spec section 8).

Pure: no I/O. ``to_chat_completions`` either returns a body a strict chat-completions server
accepts or raises ``UnsupportedFeature`` (a 400) naming the field it cannot express
(``tools.1.type: server tool 'web_search_20250305' cannot run on an OpenAI-compatible
upstream``) or ``InvalidRequest`` for a conversation the API itself would refuse (a
``tool_result`` that answers no ``tool_use``). What is dropped instead, and why that is safe, is
the table in the README ("OpenAI-compatible upstreams"); ``DROPPED`` and ``REJECTED`` below are
that table's top-level rows.

Conversation rules: a ``user`` turn's ``tool_result`` blocks become ``role: tool`` messages placed
before the rest of that turn (images inside results move into a user message right after them,
an ``is_error`` result is prefixed ``Error: ``); every ``tool_use`` of an assistant turn must be
answered by the next turn, as both APIs require.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import InvalidRequest, UnsupportedFeature

__all__ = ["DROPPED", "REJECTED", "RequestOptions", "to_chat_completions"]

# Top-level fields with no chat-completions equivalent whose loss does not change the answer's
# meaning: prompt caching, routing and tier hints, diagnostics, server-side context editing.
DROPPED = frozenset(
    {
        "cache_control",
        "service_tier",
        "container",
        "inference_geo",
        "speed",
        "diagnostics",
        "context_management",
    }
)
# Top-level fields that need Anthropic's servers: refused with a 400.
REJECTED = {
    "mcp_servers": "remote MCP servers run on Anthropic's servers",
    "compaction": "server-side compaction runs on Anthropic's servers",
    "fallbacks": "model fallbacks are an Anthropic server feature",
    "billing_policy": "a billing policy bills an Anthropic organization",
    "thread": "a thread holds the conversation on Anthropic's servers",
}
# Fields translated below (anything else at the top level is refused: it is newer than this
# translation, and nobody can tell whether dropping it is safe).
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "output_format",
        "temperature",
        "top_p",
        "top_k",
    }
)
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_CLIENT_TOOL_TYPES = (None, "custom")
# Function names: ^[a-zA-Z0-9_-]{1,64}$ (the Messages API allows 128, spec section 1.2).
_FUNCTION_NAME_MAX = 64
_TOOL_DROPPED = (
    "cache_control",
    "input_examples",
    "defer_loading",
    "eager_input_streaming",
    "allowed_callers",
)
_SERVER_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Per-upstream choices (from ``OpenAIUpstreamConfig``)."""

    max_tokens_field: str = "max_tokens"  # or "max_completion_tokens" (OpenAI reasoning models)
    send_top_k: bool = False  # vLLM takes top_k; OpenAI refuses it
    send_reasoning_effort: bool = True  # thinking / output_config.effort -> reasoning_effort
    send_stream_options: bool = True  # stream_options.include_usage (usage in the stream)
    send_pdf: bool = False  # PDFs as OpenAI `file` parts (OpenAI takes them; vLLM/xAI do not)
    system_role: str = "system"  # or "developer"


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _text_of_blocks(blocks: Any, path: str) -> str:
    if isinstance(blocks, str):
        return blocks
    parts: list[str] = []
    for i, block in enumerate(blocks or []):
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block["text"])
        else:
            btype = block.get("type") if isinstance(block, dict) else None
            raise UnsupportedFeature(f"{path}.{i}.type: only text blocks can go here, not {btype!r}")
    return "\n".join(parts) if len(parts) > 1 else "".join(parts)


class _Translator:
    def __init__(self, body: dict[str, Any], options: RequestOptions) -> None:
        self.body = body
        self.options = options

    # --- content parts ---------------------------------------------------------------------

    def image_part(self, block: dict[str, Any], path: str) -> dict[str, Any]:
        source = block["source"]
        stype = source.get("type")
        if stype == "base64":
            url = f"data:{source['media_type']};base64,{source['data']}"
        elif stype == "url":
            url = source["url"]
        else:
            raise UnsupportedFeature(
                f"{path}.source.type: image source {stype!r} cannot be sent to an OpenAI-compatible "
                "upstream (use base64 or url)"
            )
        return {"type": "image_url", "image_url": {"url": url}}

    def document_parts(self, block: dict[str, Any], path: str) -> list[dict[str, Any]]:
        source = block["source"]
        stype = source.get("type")
        title = block.get("title")
        context = block.get("context")
        head = "\n".join(x for x in (title, context) if isinstance(x, str) and x)
        if stype == "text":
            text = source["data"]
            return [{"type": "text", "text": f"{head}\n\n{text}" if head else text}]
        if stype == "content":
            content = source["content"]
            if isinstance(content, str):
                return [{"type": "text", "text": f"{head}\n\n{content}" if head else content}]
            parts = [{"type": "text", "text": head}] if head else []
            for i, inner in enumerate(content):
                parts.extend(self.user_parts(inner, f"{path}.source.content.{i}"))
            return parts
        if stype == "base64" and source.get("media_type") == "application/pdf":
            if not self.options.send_pdf:
                raise UnsupportedFeature(
                    f"{path}: PDF documents are not supported by this upstream "
                    "(an OpenAI-compatible server without file inputs)"
                )
            filename = title if isinstance(title, str) and title else "document.pdf"
            return [
                {
                    "type": "file",
                    "file": {
                        "filename": filename,
                        "file_data": f"data:application/pdf;base64,{source['data']}",
                    },
                }
            ]
        raise UnsupportedFeature(
            f"{path}.source.type: document source {stype!r} cannot be sent to an OpenAI-compatible upstream"
        )

    def user_parts(self, block: Any, path: str) -> list[dict[str, Any]]:
        """One Anthropic user-side block as chat-completions content parts."""
        btype = block.get("type")
        if btype == "text":
            return [{"type": "text", "text": block["text"]}]
        if btype == "image":
            return [self.image_part(block, path)]
        if btype == "document":
            return self.document_parts(block, path)
        if btype == "search_result":
            head = f"{block['title']} ({block['source']})"
            return [
                {"type": "text", "text": head + "\n" + _text_of_blocks(block["content"], f"{path}.content")}
            ]
        if btype in ("thinking", "redacted_thinking"):
            return []
        if btype in ("tool_use", "tool_result"):
            raise InvalidRequest(f"{path}.type: {btype} is not allowed in this turn")
        if btype in _SERVER_BLOCKS:
            raise UnsupportedFeature(f"{path}.type: {btype} blocks need Anthropic's server tools")
        raise UnsupportedFeature(
            f"{path}.type: block type {btype!r} cannot be sent to an OpenAI-compatible upstream"
        )

    # --- turns -----------------------------------------------------------------------------

    def tool_results(
        self, blocks: list[Any], path: str, expected: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``role: tool`` messages of a user turn and the image parts that must follow them."""
        tools: list[dict[str, Any]] = []
        images: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            if not (isinstance(block, dict) and block.get("type") == "tool_result"):
                continue
            bpath = f"{path}.{i}"
            tool_use_id = block["tool_use_id"]
            if tool_use_id not in expected:
                raise InvalidRequest(
                    f"{bpath}.tool_use_id: unexpected tool_use_id {tool_use_id!r}: each tool_result must "
                    "answer a tool_use of the previous assistant turn"
                )
            seen.add(tool_use_id)
            content = block.get("content", "")
            texts: list[str] = []
            if isinstance(content, str):
                texts.append(content)
            else:
                for j, inner in enumerate(content):
                    ipath = f"{bpath}.content.{j}"
                    if inner.get("type") == "image":
                        images.append(self.image_part(inner, ipath))
                    elif inner.get("type") == "tool_reference":
                        texts.append(f"tool_reference: {inner.get('tool_name', '')}")
                    else:
                        parts = self.user_parts(inner, ipath)
                        for part in parts:
                            if part["type"] != "text":
                                raise UnsupportedFeature(
                                    f"{ipath}: a {part['type']} part cannot go into a tool result "
                                    "(a chat-completions tool message takes text only)"
                                )
                            texts.append(part["text"])
            text = "\n".join(texts)
            if block.get("is_error") is True:
                text = f"Error: {text}" if text else "Error"
            tools.append({"role": "tool", "tool_call_id": tool_use_id, "content": text})
        missing = [tid for tid in expected if tid not in seen]
        if missing:
            raise InvalidRequest(
                f"{path}: tool_use ids were found without tool_result blocks immediately after: "
                + ", ".join(missing)
                + ". Each tool_use block must have a corresponding tool_result block in the next message."
            )
        return tools, images

    def user_turn(self, content: Any, path: str, expected: list[str]) -> list[dict[str, Any]]:
        if isinstance(content, str):
            if expected:
                self.tool_results([], f"{path}.content", expected)  # raises: results missing
            return [{"role": "user", "content": content}]
        tools, images = self.tool_results(content, f"{path}.content", expected)
        parts: list[dict[str, Any]] = list(images)
        for i, block in enumerate(content):
            if block.get("type") == "tool_result":
                continue
            parts.extend(self.user_parts(block, f"{path}.content.{i}"))
        out = list(tools)
        if parts:
            if all(p["type"] == "text" for p in parts) and len(parts) == 1:
                out.append({"role": "user", "content": parts[0]["text"]})
            else:
                out.append({"role": "user", "content": parts})
        return out

    def assistant_turn(self, content: Any, path: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The assistant message (None when nothing survives) and the tool_use ids it holds."""
        if isinstance(content, str):
            return ({"role": "assistant", "content": content} if content else None), []
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            btype = block.get("type")
            bpath = f"{path}.content.{i}"
            if btype == "text":
                texts.append(block["text"])
            elif btype == "tool_use":
                calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": _dumps(block["input"])},
                    }
                )
            elif btype in ("thinking", "redacted_thinking"):
                continue  # signatures cannot round-trip; the upstream never sees its own reasoning
            elif btype in _SERVER_BLOCKS:
                raise UnsupportedFeature(f"{bpath}.type: {btype} blocks need Anthropic's server tools")
            else:
                raise UnsupportedFeature(
                    f"{bpath}.type: block type {btype!r} cannot be sent to an OpenAI-compatible upstream"
                )
        message: dict[str, Any] = {"role": "assistant"}
        text = "".join(texts)
        if text:
            message["content"] = text
        if calls:
            message["tool_calls"] = calls
        if len(message) == 1:
            return None, []
        return message, [c["id"] for c in calls]

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        system = self.body.get("system")
        if system:
            out.append({"role": self.options.system_role, "content": _text_of_blocks(system, "system")})
        messages = self.body["messages"]
        expected: list[str] = []  # tool_use ids the next turn must answer
        last = len(messages) - 1
        for i, message in enumerate(messages):
            path = f"messages.{i}"
            role = message["role"]
            if "content" not in message:
                continue  # a beta system message with only a per-turn output_config: dropped
            content = message["content"]
            if role == "user":
                out.extend(self.user_turn(content, path, expected))
                expected = []
            elif role == "system":
                if expected:
                    self.tool_results([], f"{path}.content", expected)  # raises
                text = _text_of_blocks(content, f"{path}.content")
                out.append({"role": self.options.system_role, "content": text})
            else:
                if expected:
                    self.tool_results([], f"{path}.content", expected)  # raises
                turn, expected = self.assistant_turn(content, path)
                if turn is None:
                    continue
                if i == last:
                    raise UnsupportedFeature(
                        f"{path}: a final assistant turn (prefill) cannot be continued by an "
                        "OpenAI-compatible upstream"
                    )
                out.append(turn)
        if expected:
            raise UnsupportedFeature(
                f"messages.{last}: a final assistant turn (prefill) cannot be continued by an "
                "OpenAI-compatible upstream"
            )
        return out

    # --- tools -----------------------------------------------------------------------------

    def tools(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, tool in enumerate(self.body.get("tools") or []):
            ttype = tool.get("type")
            if ttype not in _CLIENT_TOOL_TYPES:
                raise UnsupportedFeature(
                    f"tools.{i}.type: {ttype!r} is an Anthropic-defined tool; an OpenAI-compatible "
                    "upstream can only call custom tools (name, description, input_schema)"
                )
            name = tool["name"]
            if len(name) > _FUNCTION_NAME_MAX:
                raise UnsupportedFeature(
                    f"tools.{i}.name: tool {name!r} is {len(name)} characters long; an OpenAI-compatible "
                    f"upstream takes function names of at most {_FUNCTION_NAME_MAX}"
                )
            function: dict[str, Any] = {"name": name}
            if isinstance(tool.get("description"), str):
                function["description"] = tool["description"]
            function["parameters"] = tool["input_schema"]
            if tool.get("strict") is True:
                function["strict"] = True
            out.append({"type": "function", "function": function})
        return out

    def tool_choice(self, body: dict[str, Any], out: dict[str, Any]) -> None:
        choice = body.get("tool_choice")
        if not isinstance(choice, dict):
            return
        ctype = choice.get("type")
        if ctype == "auto":
            out["tool_choice"] = "auto"
        elif ctype == "any":
            out["tool_choice"] = "required"
        elif ctype == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif ctype == "none":
            out["tool_choice"] = "none"
        else:
            raise UnsupportedFeature(
                f"tool_choice.type: {ctype!r} cannot be sent to an OpenAI-compatible upstream"
            )
        if choice.get("disable_parallel_tool_use") is True and ctype != "none":
            out["parallel_tool_calls"] = False

    # --- the rest --------------------------------------------------------------------------

    def reasoning_effort(self) -> str | None:
        config = self.body.get("output_config")
        if isinstance(config, dict) and isinstance(config.get("effort"), str):
            effort = _EFFORT.get(config["effort"])
            if effort is None:
                raise InvalidRequest(
                    "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
                )
            return effort
        thinking = self.body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens", 0)
            return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"
        return None  # adaptive: the server's default; disabled/between_tools: not expressible

    def response_format(self) -> dict[str, Any] | None:
        config = self.body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        path = "output_config.format"
        if fmt is None and isinstance(self.body.get("output_format"), dict):
            fmt, path = self.body["output_format"], "output_format"
        if fmt is None:
            return None
        if (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            raise UnsupportedFeature(
                f"{path}: only {{type: 'json_schema', schema: {{...}}}} can be translated"
            )
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True},
        }

    def build(self, model: str) -> dict[str, Any]:
        body = self.body
        for key in body:
            if key in _TRANSLATED or key in DROPPED:
                continue
            reason = REJECTED.get(key, "it has no equivalent in chat completions")
            raise UnsupportedFeature(f"{key}: not supported by an OpenAI-compatible upstream ({reason})")
        if body["max_tokens"] == 0:
            raise UnsupportedFeature(
                "max_tokens: 0 (cache warm-up without output) has no meaning on an OpenAI-compatible upstream"
            )
        out: dict[str, Any] = {"model": model, "messages": self.messages()}
        out[self.options.max_tokens_field] = body["max_tokens"]
        tools = self.tools()
        if tools:
            out["tools"] = tools
            self.tool_choice(body, out)
        stops = body.get("stop_sequences")
        if stops:
            out["stop"] = list(stops)
        for key in ("temperature", "top_p"):
            if body.get(key) is not None:
                out[key] = body[key]
        if body.get("top_k") is not None and self.options.send_top_k:
            out["top_k"] = body["top_k"]
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
            out["user"] = metadata["user_id"]
        effort = self.reasoning_effort()
        if effort is not None and self.options.send_reasoning_effort:
            out["reasoning_effort"] = effort
        response_format = self.response_format()
        if response_format is not None:
            out["response_format"] = response_format
        if body.get("stream") is True:
            out["stream"] = True
            if self.options.send_stream_options:
                out["stream_options"] = {"include_usage": True}
        return out


def to_chat_completions(
    body: dict[str, Any], model: str, options: RequestOptions | None = None
) -> dict[str, Any]:
    """The chat-completions body for a validated Anthropic Messages body.

    ``model`` is the upstream's name for the model (after routing). Raises ``UnsupportedFeature``
    or ``InvalidRequest`` naming the field that cannot be expressed.
    """
    return _Translator(body, options or RequestOptions()).build(model)
