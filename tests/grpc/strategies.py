"""Hypothesis strategies for Anthropic Messages API JSON values (spec sections 1-4 and 7).

Values are valid API shapes, with optional members left out at random, and sprinkled with what a
newer client or upstream may send: unknown members, nulls, members of another JSON type, unknown
block/event/delta/tool types. The converters must carry all of it through protobuf unchanged.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from bench import payloads

S = st.SearchStrategy

# Text without surrogates (not encodable as UTF-8, so never in a JSON body).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
ident = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)
int64 = st.integers(-(2**63), 2**63 - 1)
small_int = st.integers(0, 2**31)
finite = st.floats(allow_nan=False, allow_infinity=False)

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), finite, text)
json_value: S[Any] = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
json_object = st.dictionaries(text, json_value, max_size=4)

# Members a newer API may add, and members whose value may arrive as another JSON type.
_EXTRA_KEYS = st.sampled_from(
    ["future_field", "x", "n", "type", "text", "index", "content", "input", "id", "from"]
)


def perturbed(base: S[dict[str, Any]]) -> S[dict[str, Any]]:
    """``base``, and sometimes ``base`` with members added or replaced by arbitrary JSON."""
    noisy = st.tuples(base, st.dictionaries(_EXTRA_KEYS, json_value, min_size=1, max_size=2)).map(
        lambda pair: {**pair[0], **pair[1]}
    )
    return st.one_of(base, base, base, noisy)


def obj(required: dict[str, S[Any]] | None = None, **optional: S[Any]) -> S[dict[str, Any]]:
    return perturbed(st.fixed_dictionaries(required or {}, optional=optional))


def typed(
    type_: str | S[str], required: dict[str, S[Any]] | None = None, **optional: S[Any]
) -> S[dict[str, Any]]:
    t = st.just(type_) if isinstance(type_, str) else type_
    return obj({"type": t, **(required or {})}, **optional)


def versioned(prefix: str) -> S[str]:
    return st.sampled_from(["20250124", "20250305", "20250910", "20260209", "1"]).map(lambda d: prefix + d)


nullable_str = st.one_of(st.none(), text)
str_list = st.lists(text, max_size=3)
unknown_typed = st.builds(
    lambda t, rest: {**rest, "type": t}, st.sampled_from(["zz_future_type", "text_v2"]), json_object
)

cache_control = obj({"type": st.just("ephemeral")}, ttl=st.sampled_from(["5m", "1h"]))
caller = st.one_of(typed("direct"), typed(versioned("code_execution_"), {"tool_id": ident}))
citations_config = obj(enabled=st.booleans())

citation = st.one_of(
    typed(
        "char_location",
        {"cited_text": text, "document_index": small_int, "document_title": nullable_str},
        start_char_index=small_int,
        end_char_index=small_int,
        file_id=nullable_str,
    ),
    typed(
        "page_location",
        {"cited_text": text, "document_index": small_int, "document_title": nullable_str},
        start_page_number=small_int,
        end_page_number=small_int,
    ),
    typed(
        "content_block_location",
        {"cited_text": text, "document_index": small_int, "document_title": nullable_str},
        start_block_index=small_int,
        end_block_index=small_int,
    ),
    typed(
        "web_search_result_location",
        {"cited_text": text, "url": text, "title": nullable_str},
        encrypted_index=text,
    ),
    typed(
        "search_result_location",
        {"cited_text": text, "source": text, "title": nullable_str},
        search_result_index=small_int,
        start_block_index=small_int,
        end_block_index=small_int,
    ),
    unknown_typed,
)

text_block = typed(
    "text",
    {"text": text},
    citations=st.one_of(st.none(), st.lists(citation, max_size=2)),
    cache_control=cache_control,
)
image_source = st.one_of(
    typed("base64", {"media_type": st.sampled_from(["image/png", "image/jpeg"]), "data": text}),
    typed("url", {"url": text}),
    typed("file", {"file_id": ident}),
    unknown_typed,
)
image_block = typed(
    "image",
    {"source": image_source},
    cache_control=cache_control,
    transformations=obj(oversized_image=st.sampled_from(["downsize", "error"])),
)
document_source = st.one_of(
    typed("base64", {"media_type": st.just("application/pdf"), "data": text}),
    typed("text", {"media_type": st.just("text/plain"), "data": text}),
    typed("content", {"content": st.one_of(text, st.lists(st.one_of(text_block, image_block), max_size=2))}),
    typed("url", {"url": text}),
    typed("file", {"file_id": ident}),
)
document_block = typed(
    "document",
    {"source": document_source},
    title=nullable_str,
    context=text,
    citations=citations_config,
    cache_control=cache_control,
)
search_result_block = typed(
    "search_result",
    {"source": text, "title": text, "content": st.lists(text_block, max_size=2)},
    citations=citations_config,
    cache_control=cache_control,
)
tool_use_block = typed(
    "tool_use",
    {"id": ident, "name": ident, "input": json_object},
    caller=caller,
    toolset_name=text,
    cache_control=cache_control,
)
server_tool_use_block = typed(
    "server_tool_use",
    {
        "id": ident,
        "name": st.sampled_from(["web_search", "web_fetch", "code_execution"]),
        "input": json_object,
    },
    caller=caller,
)
thinking_block = typed("thinking", {"thinking": text, "signature": text})
redacted_thinking_block = typed("redacted_thinking", {"data": text})
tool_reference_block = typed("tool_reference", {"tool_name": ident}, cache_control=cache_control)


def _error(type_: str) -> S[dict[str, Any]]:
    return typed(
        type_, {"error_code": st.sampled_from(["unavailable", "max_uses_exceeded", "too_many_requests"])}
    )


web_search_result = typed(
    "web_search_result", {"url": text, "title": text, "encrypted_content": text}, page_age=nullable_str
)
code_output = typed("code_execution_output", {"file_id": ident})
server_result_block = st.one_of(
    typed(
        "web_search_tool_result",
        {
            "tool_use_id": ident,
            "content": st.one_of(
                st.lists(web_search_result, max_size=2), _error("web_search_tool_result_error")
            ),
        },
        caller=caller,
    ),
    typed(
        "web_fetch_tool_result",
        {
            "tool_use_id": ident,
            "content": st.one_of(
                typed("web_fetch_result", {"url": text, "content": document_block}, retrieved_at=text),
                _error("web_fetch_tool_result_error"),
            ),
        },
    ),
    typed(
        "code_execution_tool_result",
        {
            "tool_use_id": ident,
            "content": st.one_of(
                typed(
                    "code_execution_result",
                    {
                        "stdout": text,
                        "stderr": text,
                        "return_code": small_int,
                        "content": st.lists(code_output, max_size=2),
                    },
                ),
                _error("code_execution_tool_result_error"),
            ),
        },
    ),
    typed(
        "tool_search_tool_result",
        {
            "tool_use_id": ident,
            "content": typed(
                "tool_search_tool_search_result",
                {"tool_references": st.lists(tool_reference_block, max_size=2)},
            ),
        },
    ),
)
other_block = st.one_of(
    typed("container_upload", {"file_id": ident}),
    typed("compaction", {"content": nullable_str}, encrypted_content=text, signature=text),
    typed("fallback", {"from": text, "to": text}, trigger=text),
    unknown_typed,
)
tool_result_block = typed(
    "tool_result",
    {"tool_use_id": ident},
    content=st.one_of(
        text,
        st.lists(st.one_of(text_block, image_block, search_result_block, tool_reference_block), max_size=2),
    ),
    is_error=st.booleans(),
    cache_control=cache_control,
)

output_block = st.one_of(
    text_block,
    thinking_block,
    redacted_thinking_block,
    tool_use_block,
    server_tool_use_block,
    server_result_block,
    other_block,
)
input_block = st.one_of(
    text_block,
    image_block,
    document_block,
    search_result_block,
    tool_use_block,
    tool_result_block,
    thinking_block,
    redacted_thinking_block,
    server_tool_use_block,
    server_result_block,
    other_block,
)
message_param = obj(
    {
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": st.one_of(text, st.lists(input_block, max_size=3)),
    }
)

custom_tool = obj(
    {"name": ident, "input_schema": json_object},
    type=st.just("custom"),
    description=text,
    cache_control=cache_control,
    strict=st.booleans(),
    input_examples=st.lists(json_object, max_size=2),
    defer_loading=st.booleans(),
    eager_input_streaming=st.one_of(st.none(), st.booleans()),
    allowed_callers=st.lists(st.sampled_from(["direct", "code_execution_20250825"]), max_size=2),
)
tool = st.one_of(
    custom_tool,
    typed(
        versioned("bash_"),
        {"name": st.just("bash")},
        cache_control=cache_control,
        defer_loading=st.booleans(),
    ),
    typed(
        versioned("text_editor_"), {"name": st.just("str_replace_based_edit_tool")}, max_characters=small_int
    ),
    typed(versioned("memory_"), {"name": st.just("memory")}),
    typed(
        versioned("web_search_"),
        {"name": st.just("web_search")},
        max_uses=small_int,
        allowed_domains=str_list,
        user_location=typed("approximate", city=text, region=text, country=text, timezone=text),
    ),
    typed(
        versioned("web_fetch_"),
        {"name": st.just("web_fetch")},
        max_uses=small_int,
        blocked_domains=str_list,
        citations=citations_config,
        max_content_tokens=small_int,
        use_cache=st.booleans(),
    ),
    typed(versioned("code_execution_"), {"name": st.just("code_execution")}, allowed_callers=str_list),
    typed(versioned("tool_search_tool_bm25_"), {"name": ident}),
    typed(versioned("computer_toolset_"), {"name": ident}, configs=json_value),
    unknown_typed,
)
tool_choice = st.one_of(
    typed("auto", disable_parallel_tool_use=st.booleans()),
    typed("any", disable_parallel_tool_use=st.booleans()),
    typed("tool", {"name": ident}, disable_parallel_tool_use=st.booleans()),
    typed("none"),
    unknown_typed,
)
thinking = st.one_of(
    typed("enabled", {"budget_tokens": small_int}, display=st.sampled_from(["summarized", "omitted"])),
    typed("adaptive", display=st.sampled_from(["summarized", "omitted"])),
    typed("disabled"),
    typed("between_tools"),
    unknown_typed,
)
output_config = obj(
    effort=st.sampled_from(["low", "medium", "high", "xhigh", "max"]),
    format=typed("json_schema", {"schema": json_object}),
)
system = st.one_of(text, st.lists(text_block, max_size=2))

_request_fields: dict[str, S[Any]] = dict(
    system=system,
    stop_sequences=str_list,
    stream=st.booleans(),
    metadata=obj(user_id=nullable_str),
    tools=st.lists(tool, max_size=3),
    tool_choice=tool_choice,
    thinking=thinking,
    output_config=output_config,
    cache_control=st.one_of(st.none(), cache_control),
    service_tier=st.sampled_from(["auto", "standard_only"]),
    container=st.one_of(
        ident,
        obj(
            id=ident,
            skills=st.lists(obj({"skill_id": ident, "type": st.just("anthropic")}, version=text), max_size=2),
        ),
    ),
    inference_geo=text,
    speed=st.one_of(st.none(), st.sampled_from(["standard", "fast"])),
    diagnostics=obj(previous_message_id=nullable_str),
    temperature=st.one_of(finite, st.integers(0, 1)),
    top_p=finite,
    top_k=small_int,
    context_management=json_value,
    mcp_servers=st.lists(typed("url", {"url": text, "name": ident}, authorization_token=text), max_size=2),
    fallbacks=json_value,
    fallback_credit_token=text,
)
request = obj(
    {"model": ident, "max_tokens": st.integers(0, 2**20), "messages": st.lists(message_param, max_size=3)},
    **_request_fields,
)
count_tokens_request = obj(
    {"model": ident, "messages": st.lists(message_param, max_size=3)},
    system=system,
    tools=st.lists(tool, max_size=2),
    tool_choice=tool_choice,
    thinking=thinking,
    cache_control=cache_control,
    output_config=output_config,
    speed=st.sampled_from(["standard", "fast"]),
)

usage = obj(
    {"input_tokens": small_int, "output_tokens": small_int},
    cache_creation_input_tokens=st.one_of(st.none(), small_int),
    cache_read_input_tokens=st.one_of(st.none(), small_int),
    cache_creation=st.one_of(
        st.none(), obj(ephemeral_5m_input_tokens=small_int, ephemeral_1h_input_tokens=small_int)
    ),
    server_tool_use=st.one_of(st.none(), obj(web_search_requests=small_int, web_fetch_requests=small_int)),
    service_tier=st.one_of(st.none(), st.sampled_from(["standard", "priority", "batch"])),
    output_tokens_details=st.one_of(st.none(), obj(thinking_tokens=small_int)),
    inference_geo=nullable_str,
    speed=nullable_str,
)
stop_details = st.one_of(st.none(), typed("refusal", category=nullable_str, explanation=nullable_str))
container_info = st.one_of(
    st.none(),
    obj(
        {"id": ident, "expires_at": text}, skills=st.lists(obj({"skill_id": ident, "type": text}), max_size=1)
    ),
)
message = obj(
    {
        "id": ident,
        "type": st.just("message"),
        "role": st.just("assistant"),
        "content": st.lists(output_block, max_size=3),
        "model": ident,
        "stop_reason": st.one_of(
            st.none(), st.sampled_from(["end_turn", "tool_use", "pause_turn", "new_reason"])
        ),
        "stop_sequence": nullable_str,
        "usage": usage,
    },
    stop_details=stop_details,
    container=container_info,
    diagnostics=st.one_of(
        st.none(), obj(cache_miss_reason=typed("model_changed", cache_missed_input_tokens=small_int))
    ),
)

delta = st.one_of(
    typed("text_delta", {"text": text}),
    typed("input_json_delta", {"partial_json": text}),
    typed("thinking_delta", {"thinking": text}),
    typed("signature_delta", {"signature": text}),
    typed("citations_delta", {"citation": citation}),
    typed("compaction_delta", content=nullable_str, encrypted_content=text),
    unknown_typed,
)
error_object = obj(
    {"type": st.sampled_from(["overloaded_error", "api_error", "brand_new_error"]), "message": text},
    details=obj(error_code=text),
)
event = st.one_of(
    typed("message_start", {"message": message}),
    typed("content_block_start", {"index": small_int, "content_block": output_block}),
    typed("content_block_delta", {"index": small_int, "delta": delta}),
    typed("content_block_stop", {"index": small_int}),
    typed(
        "message_delta",
        {
            "delta": obj(
                {"stop_reason": nullable_str, "stop_sequence": nullable_str}, stop_details=stop_details
            ),
            "usage": usage,
        },
    ),
    typed("message_stop"),
    typed("ping"),
    typed("error", {"error": error_object}, request_id=text),
    unknown_typed,
)

support = obj(supported=st.booleans())
model_info = obj(
    {"type": st.just("model"), "id": ident, "display_name": text, "created_at": text},
    max_input_tokens=small_int,
    max_tokens=small_int,
    lifecycle=st.sampled_from(["active", "deprecated", "retired"]),
    deprecated_at=nullable_str,
    retires_at=nullable_str,
    line=st.sampled_from(["haiku", "sonnet", "opus"]),
    capabilities=obj(
        batch=support,
        citations=support,
        effort=obj(supported=st.booleans(), low=support, max=support),
        thinking=obj(
            supported=st.booleans(), types=obj(enabled=support, adaptive=support, between_tools=support)
        ),
    ),
)
list_models_response = obj(
    {
        "data": st.lists(model_info, max_size=2),
        "has_more": st.booleans(),
        "first_id": nullable_str,
        "last_id": nullable_str,
    }
)


# A large request, as a coding agent sends it: shared with the benchmarks.
large_request = payloads.large_request
