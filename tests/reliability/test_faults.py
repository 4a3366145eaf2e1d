"""The fault campaign's judge (reliability/faults.py): what it accepts and what it flags. The
campaign itself runs in `make reliability`, against the sidecar as it ships."""

from __future__ import annotations

import copy
import random

from reliability import faults
from reliability.fault_upstream import expected_events, expected_message, input_tokens_of


def _setup(key: str, stream: bool) -> faults.Tally:
    faults._BODIES[key] = faults._body(key, random.Random(1), stream)
    return faults.Tally()


def _events(key: str) -> list[dict[str, object]]:
    events = expected_events(key, input_tokens_of(faults._BODIES[key]))
    for e in events:
        if e["type"] == "message_start":
            e["message"]["id"] = "msg_other_attempt"  # type: ignore[index]
    return events


def test_the_fault_free_stream_is_equal_whatever_its_ids() -> None:
    tally = _setup("k1", True)
    faults._judge_stream(tally, "k1", _events("k1"), ended_by_status=False)
    assert (tally.equal, tally.violations) == (1, [])


def test_a_prefix_with_a_delta_then_one_error_event_is_accepted() -> None:
    tally = _setup("k2", True)
    events = _events("k2")[:4] + [{"type": "error", "error": {"type": "api_error", "message": "x"}}]
    faults._judge_stream(tally, "k2", events, ended_by_status=False)
    assert (tally.prefix_error, tally.violations) == (1, [])


def test_a_duplicated_or_missing_delta_is_a_violation() -> None:
    for mutate in (lambda ev: ev.insert(3, copy.deepcopy(ev[2])), lambda ev: ev.pop(3)):
        tally = _setup("k3", True)
        events = _events("k3")
        mutate(events)
        faults._judge_stream(tally, "k3", events, ended_by_status=False)
        assert tally.equal == 0 and len(tally.violations) == 1


def test_a_stream_cut_without_an_error_event_is_a_violation() -> None:
    tally = _setup("k4", True)
    faults._judge_stream(tally, "k4", _events("k4")[:5], ended_by_status=False)
    assert len(tally.violations) == 1


def test_json_answers_equal_or_an_error_envelope() -> None:
    tally = _setup("k5", False)
    message = expected_message("k5", input_tokens_of(faults._BODIES["k5"]))
    faults._judge_json(tally, "k5", 200, {**message, "id": "msg_elsewhere"})
    faults._judge_json(
        tally, "k5", 529, {"type": "error", "error": {"type": "overloaded_error", "message": "m"}}
    )
    faults._judge_json(tally, "k5", 200, {**message, "content": []})
    faults._judge_json(tally, "k5", 502, "<html>bad gateway</html>")
    assert (tally.equal, tally.exhausted, len(tally.violations)) == (1, 1, 2)


class _StallingStub:
    """A gRPC stub whose stream ends DEADLINE_EXCEEDED before any event, with ``trailers``."""

    def __init__(self, trailers: tuple[tuple[str, str], ...]) -> None:
        self.trailers = trailers

    def StreamMessage(self, request: object, **_: object) -> object:  # noqa: N802 (the RPC's name)
        from grpc import StatusCode
        from grpc import aio as grpc_aio

        trailers = self.trailers

        async def events() -> object:
            raise grpc_aio.AioRpcError(
                StatusCode.DEADLINE_EXCEEDED,
                grpc_aio.Metadata(),
                grpc_aio.Metadata(*trailers),
                "upstream 'a' sent no answer within 1 s",
            )
            yield  # an async generator

        return events()


async def test_the_sidecars_own_timeout_is_an_error_answer_the_clients_deadline_a_hang() -> None:
    """DEADLINE_EXCEEDED before any event is the sidecar's timeout_error when every attempt it
    could make stalled (as HTTP answers 504), and a hang only when the client's deadline ran out
    (no error type of ours in the trailers)."""
    tally = _setup("k6", True)
    body = faults._BODIES["k6"]
    await faults._grpc_one(_StallingStub((("anthropic-error-type", "timeout_error"),)), tally, "k6", body)
    assert (tally.exhausted, tally.violations) == (1, [])
    await faults._grpc_one(_StallingStub(()), tally, "k6", body)
    assert tally.exhausted == 1 and len(tally.violations) == 1
