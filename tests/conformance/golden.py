"""Golden traces: an Anthropic request, the OpenAI chunk stream an upstream answers with, and the
exact Anthropic event sequence the sidecar must emit for it (``golden/*.json``).

Each file holds ``request`` (the Anthropic body), ``chunks`` (OpenAI chunk objects and the
``"[DONE]"`` marker, in order), ``end`` (``"done"``: the body ends after the chunks; ``"cut"``:
the connection is dropped after them), ``json_equivalent`` (optional, default true: whether a
JSON completion can say the same, for the stream-vs-create comparisons), and ``events`` (the expected events; the message id is
``msg_golden``). ``python -m tests.conformance.golden`` re-records ``events`` from the current
translator and prints which files changed: a re-recorded trace must be reviewed by hand, since
the point of a golden file is that a change in output fails loudly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sidecar.core.estimate import estimate_input_tokens
from sidecar.translate.openai_response import ResponseOptions
from sidecar.translate.openai_stream import StreamTranslator

GOLDEN = Path(__file__).resolve().parent / "golden"
MESSAGE_ID = "msg_golden"


def load(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())  # type: ignore[no-any-return]


def names() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.json"))


def options_for(request: dict[str, Any]) -> ResponseOptions:
    thinking = request.get("thinking")
    return ResponseOptions(
        model=request["model"],
        input_estimate=estimate_input_tokens(request),
        stop_sequences=tuple(request.get("stop_sequences") or ()),
        omit_thinking=isinstance(thinking, dict) and thinking.get("display") == "omitted",
    )


def translate(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the pure state machine gives for a case (as the adapter drives it)."""
    translator = StreamTranslator(options_for(case["request"]), MESSAGE_ID)
    events: list[dict[str, Any]] = []
    for item in case["chunks"]:
        if item == "[DONE]":
            events += translator.finish(clean=True)
            break
        events += translator.feed(item)
        if translator.done:
            break
    events += translator.finish(clean=case["end"] == "done" and "[DONE]" in case["chunks"])
    return events


def success(case: dict[str, Any]) -> bool:
    return bool(case["events"]) and case["events"][-1]["type"] == "message_stop"


def main(argv: list[str]) -> int:
    changed = []
    for name in names():
        path = GOLDEN / f"{name}.json"
        case = json.loads(path.read_text())
        events = translate(case)
        if events != case.get("events"):
            case["events"] = events
            path.write_text(json.dumps(case, indent=1, ensure_ascii=False) + "\n")
            changed.append(name)
    print("re-recorded (review them):", ", ".join(changed) if changed else "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
