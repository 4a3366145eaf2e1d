"""The storm's per-request charge check (reliability/charges.py): what it accepts and what it
flags. The storm itself runs in `make reliability`, against the sidecar as it ships."""

from __future__ import annotations

from typing import Any

from reliability import charges
from reliability.fault_upstream import expected_events, expected_message

KEY = "c4"  # 12 deltas
EVENTS = expected_events(KEY, 11)  # message_start (input 11, output 1), deltas, message_delta ...
N = expected_message(KEY, 11)["usage"]["output_tokens"]


def stream(written: int, received: int, complete: bool = False) -> charges.Request:
    """A stream of which the upstream wrote ``written`` events and the client got ``received``."""
    return charges.Request(True, 9, (11, N), 64, EVENTS[:written], EVENTS[:received], complete)


def judge(request: charges.Request, charged: tuple[int, int]) -> tuple[str, str | None]:
    return charges.judge(request, charged)


def test_a_whole_answer_must_be_charged_its_usage() -> None:
    whole = stream(len(EVENTS), len(EVENTS), complete=True)
    assert judge(whole, (11, N)) == ("finished", None)
    for wrong in ((9, N), (11, N + 1), (22, 2 * N)):  # the estimate kept; output or all twice
        end, problem = judge(whole, wrong)
        assert end == "finished" and problem is not None and "not its usage" in problem


def test_the_sidecar_may_finish_an_answer_its_client_left() -> None:
    assert judge(stream(len(EVENTS), 3), (11, N)) == ("finished", None)
    json = charges.Request(False, 9, (11, N), 64, [expected_message(KEY, 11)], [])
    assert judge(json, (11, N)) == ("finished", None)
    assert judge(json, (9, 0)) == ("ended early", None)  # or released it before the answer came


def test_an_early_end_charges_the_reported_input_once_message_start_was_relayed() -> None:
    got_start = stream(4, 1)
    assert judge(got_start, (11, 1))[1] is None
    end, problem = judge(got_start, (9, 1))
    assert end == "ended early" and problem is not None and "input 9, not 11" in problem
    # Written but maybe not read: either; never written: the estimate.
    assert judge(stream(4, 0), (9, 1))[1] is None and judge(stream(4, 0), (11, 1))[1] is None
    assert judge(stream(0, 0), (9, 0))[1] is None
    assert "input 11, not 9" in str(judge(stream(0, 0), (11, 0))[1])
    assert "input 18" in str(judge(stream(0, 0), (18, 0))[1])  # the estimate charged twice


def test_stream_output_between_what_the_client_got_and_what_the_upstream_wrote() -> None:
    received = stream(len(EVENTS) - 2, 5)
    low = charges.output_charge(EVENTS[:5], 64)
    high = charges.output_charge(EVENTS[: len(EVENTS) - 2], 64)
    assert 1 <= low < high
    for out in (low, high):
        assert judge(received, (11, out))[1] is None
    assert "not between" in str(judge(received, (11, low - 1))[1])
    assert "not between" in str(judge(received, (11, high + 1))[1])
    json = charges.Request(False, 9, (11, N), 64, [], [])
    assert "output 3, not between 0" in str(judge(json, (9, 3))[1])


def test_nothing_charged_means_never_admitted_and_no_answer() -> None:
    assert judge(stream(0, 0), (0, 0)) == ("not admitted", None)
    assert judge(stream(3, 3), (0, 0))[1] == "was charged nothing but got an answer"


def test_output_charge_follows_the_sidecars_rule() -> None:
    def delta(text: str) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}

    start = {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}
    assert charges.output_charge([], 64) == 0
    assert charges.output_charge([start], 64) == 1
    assert charges.output_charge([start, delta("x" * 40)], 64) == 10  # the estimate: 4 chars a token
    assert charges.output_charge([start, delta("x" * 400)], 64) == 64  # at most max_tokens
    reported = {"type": "message_delta", "usage": {"output_tokens": 80}}
    assert charges.output_charge([start, delta("x" * 40), reported], 64) == 80  # never below the report
