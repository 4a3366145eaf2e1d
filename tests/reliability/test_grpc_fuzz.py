"""The gRPC fuzz campaign's judge and mutator (reliability/grpc_fuzz.py). The campaign itself
runs in `make reliability`, against the sidecar as it ships."""

from __future__ import annotations

import random

from reliability import grpc_fuzz as gf
from sidecar.messages.v1 import messages_pb2 as pb

TRAILER = (("anthropic-error-type", "invalid_request_error"), ("anthropic-error-message", "x"))


def _case(decodable: bool = True, metadata: str = "ok", deadline: str = "normal") -> gf.Case:
    return gf.Case("CreateMessage", "bitflip", decodable, metadata, deadline)


def test_our_errors_need_the_trailer_and_never_unknown() -> None:
    assert gf.judge(_case(), gf.Outcome("OK")) is None
    assert gf.judge(_case(), gf.Outcome("INVALID_ARGUMENT", "bad", TRAILER)) is None
    assert gf.judge(_case(), gf.Outcome("INVALID_ARGUMENT", "bad")) is not None
    assert gf.judge(_case(), gf.Outcome("INTERNAL", "Invalid metadata")) is not None
    assert "UNKNOWN" in (
        gf.judge(_case(decodable=False), gf.Outcome("UNKNOWN", "Unexpected DecodeError")) or ""
    )
    internal = gf.Outcome("INTERNAL", "Internal server error", (("anthropic-error-type", "api_error"),))
    assert "Internal server error" in (gf.judge(_case(), internal) or "")


def test_undecodable_bytes_may_get_grpcios_own_clean_status() -> None:
    assert gf.judge(_case(decodable=False), gf.Outcome("INTERNAL", "Failed to deserialize request")) is None
    assert gf.judge(_case(decodable=False), gf.Outcome("INVALID_ARGUMENT", "x", TRAILER)) is None
    assert gf.judge(_case(decodable=False), gf.Outcome("OK")) is not None
    assert gf.judge(_case(decodable=False), gf.Outcome("CANCELLED", "")) is not None


def test_hangs_and_deadlines() -> None:
    assert gf.judge(_case(), gf.Outcome("HANG")) is not None
    assert gf.judge(_case(), gf.Outcome("DEADLINE_EXCEEDED", "Deadline Exceeded")) is not None
    assert gf.judge(_case(deadline="1ms"), gf.Outcome("DEADLINE_EXCEEDED", "Deadline Exceeded")) is None
    assert gf.judge(_case(deadline="0ms"), gf.Outcome("INTERNAL", "x")) is not None


def test_metadata_grpc_refuses_itself_is_not_ours() -> None:
    refused = gf.Outcome("RESOURCE_EXHAUSTED", "received metadata size exceeds hard limit")
    assert gf.judge(_case(metadata="huge_200k"), refused) is None
    assert gf.judge(_case(), refused) is not None
    assert gf.judge(_case(metadata="crlf"), gf.Outcome("CLIENT_REFUSED", "ExecuteBatchError")) is None
    assert gf.judge(_case(), gf.Outcome("CLIENT_REFUSED", "ExecuteBatchError")) is not None


def test_mutations_are_seeded_and_reach_the_wire() -> None:
    seed = gf._plain_seeds()["CreateMessage"][1]
    kinds = {}
    for kind in gf.MUTATIONS:
        a = gf.mutate(kind, seed, random.Random(3))
        b = gf.mutate(kind, seed, random.Random(3))
        assert a == b, kind  # deterministic for a seed
        kinds[kind] = a
    assert kinds["none"] is seed
    for kind in gf.BYTE_MUTATIONS:
        assert isinstance(kinds[kind], bytes) and kinds[kind] != seed.SerializeToString()
    truncated = kinds["truncate"]
    assert isinstance(truncated, bytes) and len(truncated) < len(seed.SerializeToString())
    bad = kinds["bad_json"]
    assert isinstance(bad, pb.CreateMessageRequest) and bad != seed
    huge = gf.mutate("huge_repeated", seed, random.Random(1))
    assert isinstance(huge, pb.CreateMessageRequest) and huge.ByteSize() > 10 * seed.ByteSize()
    # Undecodable bytes are told apart from decodable ones as the server's parser would.
    assert gf.decodable("CreateMessage", seed.SerializeToString())
    assert not gf.decodable("CreateMessage", b"\x0a\x64ab")


def test_a_tally_counts_and_keeps_violations() -> None:
    tally = gf.Tally()
    tally.add(_case(), gf.Outcome("OK"), "input 1")
    tally.add(_case(), gf.Outcome("UNKNOWN", "boom"), "input 2")
    assert tally.calls == 2 and tally.codes == {"OK": 1, "UNKNOWN": 1}
    assert len(tally.violations) == 1 and "input 2" in tally.violations[0]


def test_raw_http2_calls_must_end_with_trailers_or_a_reset() -> None:
    case = gf.Case("CreateMessage", "none", True, "raw_crlf", "normal")
    assert gf.judge(case, gf.Outcome("RAW_END")) is None
    assert gf.judge(case, gf.Outcome("RAW_RESET")) is None
    assert gf.judge(case, gf.Outcome("RAW_TIMEOUT")) is not None
    assert gf.judge(case, gf.Outcome("RAW_CLOSED")) is not None
