"""What the core reads out of stream events: usage, and an in-band error as a SidecarError."""

from __future__ import annotations

import grpc

from sidecar.core import StreamEvent, error_from_event, event_usage


def ev(name: str, **data: object) -> StreamEvent:
    return StreamEvent(name, {"type": name, **data})


def test_event_usage_reads_both_places_the_api_puts_it() -> None:
    start = ev("message_start", message={"id": "m", "usage": {"input_tokens": 5, "output_tokens": 1}})
    assert event_usage(start) == {"input_tokens": 5, "output_tokens": 1}
    assert event_usage(ev("message_delta", delta={}, usage={"output_tokens": 9})) == {"output_tokens": 9}
    assert event_usage(ev("content_block_delta", usage={"output_tokens": 9})) is None
    assert event_usage(ev("message_start", message="not an object")) is None
    assert event_usage(ev("message_delta", usage=[1])) is None


def test_error_from_event_keeps_type_message_and_request_id() -> None:
    err = error_from_event(
        ev("error", error={"type": "overloaded_error", "message": "Overloaded"}, request_id="req_up"),
        "req_own",
    )
    assert (err.status, err.error_type, err.message, err.request_id) == (
        529,
        "overloaded_error",
        "Overloaded",
        "req_up",
    )
    assert err.grpc_code == grpc.StatusCode.UNAVAILABLE
    bare = error_from_event(ev("error"), "req_own")
    assert (bare.status, bare.error_type, bare.request_id) == (500, "api_error", "req_own")
    assert bare.message == "upstream sent an error event"
