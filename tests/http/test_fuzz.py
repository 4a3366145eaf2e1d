"""Random bodies through the real HTTP door (mock upstream): a 2xx or a 4xx envelope, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.test_validate import bodies
from tests.inprocess import ThreadedSidecar

VALID = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        bodies,
        st.builds(
            lambda extra: {**VALID, **extra},
            st.dictionaries(
                st.sampled_from(
                    ["tools", "tool_choice", "thinking", "system", "stop_sequences", "stream", "messages"]
                ),
                bodies,
                max_size=2,
            ),
        ),
    )
)
def test_no_5xx_for_any_body(mock_sidecar: ThreadedSidecar, body: Any) -> None:
    with httpx.Client(base_url=mock_sidecar.http_url, headers={"x-api-key": "k"}, timeout=30) as client:
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            r = client.post(path, content=json.dumps(body).encode())
            assert r.status_code < 500, (r.status_code, r.text, body)
            if r.status_code >= 400:
                envelope = r.json()
                assert (
                    envelope["type"] == "error" and envelope["error"]["type"] and envelope["error"]["message"]
                )
