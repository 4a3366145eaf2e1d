from __future__ import annotations

import json

from sidecar.core.jsonbytes import replace_member


def test_only_the_member_changes() -> None:
    raw = b'{"z": 1.0, "model":"a",  "messages":[{"role":"user","content":"caf\\u00e9"}],"n":12345678901234567890}'
    out = replace_member(raw, "model", "b")
    assert json.loads(out) == {**json.loads(raw), "model": "b"}
    # Every other member keeps its exact bytes and order.
    assert b'"z":1.0' in out and b'"content":"caf\\u00e9"' in out and b"12345678901234567890" in out
    assert out.index(b'"z"') < out.index(b'"model"') < out.index(b'"messages"')
