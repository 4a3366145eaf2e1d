"""W3C trace context: ``traceparent`` values parsed, and malformed ones ignored."""

from __future__ import annotations

import pytest

from sidecar.telemetry.tracing import parse_traceparent


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  # version 00 has 4 fields
        "00-0x f7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_invalid_traceparent_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None


def test_traceparent_parsed() -> None:
    sc = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=1,b=2")
    assert sc is not None and sc.is_remote and sc.trace_flags.sampled
    assert (sc.trace_id, sc.span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert sc.trace_state.to_header() == "a=1,b=2"
    # A later version may append fields.
    later = parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-what-ever")
    assert later is not None and not later.trace_flags.sampled
