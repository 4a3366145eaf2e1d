"""Run under an old anthropic SDK (its own venv): exercise the sidecar, print what happened as JSON.

Usage: python sdk_probe.py BASE_URL. Only features every SDK generation has are used; newer
ones are probed with hasattr so the script runs on 0.40 as well as 1.x.
"""

from __future__ import annotations

import json
import sys

import anthropic

base_url = sys.argv[1]
client = anthropic.Anthropic(base_url=base_url, api_key="compat-key", max_retries=0)
out: dict[str, object] = {"version": anthropic.__version__}
messages = [{"role": "user", "content": "Hello from an old SDK"}]

message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
out["create"] = message.model_dump(exclude_none=True)

with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=messages) as stream:
    out["text"] = "".join(stream.text_stream)
    out["final"] = stream.get_final_message().model_dump(exclude_none=True)

tools = [
    {
        "name": "get_weather",
        "description": "w",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
called = client.messages.create(
    model="m", max_tokens=200, messages=messages, tools=tools, tool_choice={"type": "any"}
)
out["tool_use"] = [b.model_dump() for b in called.content if b.type == "tool_use"]

# count_tokens: GA in newer SDKs, beta (with ?beta=true and a beta header) in 0.40.
if hasattr(client.messages, "count_tokens"):
    out["count"] = client.messages.count_tokens(model="m", messages=messages).input_tokens
else:
    out["count"] = client.beta.messages.count_tokens(
        model="m", messages=messages, betas=["token-counting-2024-11-01"]
    ).input_tokens

if hasattr(client, "models"):
    out["models"] = [m.id for m in client.models.list(limit=3).data]

for directive, name in (("rate_limit_error", "RateLimitError"), ("invalid_request_error", "BadRequestError")):
    try:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": f"[mock error={directive}] x"}]
        )
        out[name] = "no error"
    except anthropic.APIStatusError as exc:
        out[name] = [type(exc).__name__, exc.status_code, exc.body["error"]["type"]]  # type: ignore[index]

print(json.dumps(out))
