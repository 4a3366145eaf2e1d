"""The HTTP fuzz's inputs and judge (reliability/http_fuzz.py). The campaign itself runs in
`make reliability`, against the sidecar as it ships."""

from __future__ import annotations

import random

from reliability import http_fuzz as hf
from reliability import spec_json
from reliability.http_wire import VALID, Response, post

ENVELOPE = b'{"type":"error","error":{"type":"invalid_request_error","message":"x"}}'


def test_every_generator_is_seeded() -> None:
    for name, gen in hf.GENERATORS.items():
        assert gen(random.Random(5)) == gen(random.Random(5)), name


def test_spec_json_inputs_are_framed_requests_to_the_messages_paths() -> None:
    pool = spec_json.SpecBodies(
        ['{"model": "m", "max_tokens": 1, "messages": []}'], ['{"model": "m", "messages": []}']
    )
    inputs = [hf.gen_spec_json(pool, random.Random(i)) for i in range(100)]
    assert inputs == [hf.gen_spec_json(pool, random.Random(i)) for i in range(100)]
    for inp in inputs:
        assert not inp.framing_broken and inp.answers == 1 and inp.kind in spec_json.MUTATIONS
        head, _, body = inp.data.partition(b"\r\n\r\n")
        assert head.startswith((b"POST /v1/messages HTTP/1.1", b"POST /v1/messages/count_tokens HTTP/1.1"))
        assert b"content-length: %d" % len(body) in head


def test_judge() -> None:
    valid = hf.Input(post(VALID), framing_broken=False)
    broken = hf.Input(b"GET / HTTP/1.1\r\nhost: \x00\r\n\r\n", framing_broken=True)
    ok, refused = Response(200, {}, b"{}"), Response(400, {}, ENVELOPE)
    assert hf.judge(valid, [ok], closed=False, timed_out=False) is None
    assert hf.judge(valid, [Response(500, {}, ENVELOPE)], closed=False, timed_out=False) is not None
    assert hf.judge(valid, [], closed=True, timed_out=False) == "closed without an answer"
    assert hf.judge(broken, [], closed=True, timed_out=False) is None
    assert hf.judge(broken, [refused], closed=True, timed_out=False) is None
    assert hf.judge(broken, [], closed=False, timed_out=True) is not None
    pipelined = hf.Input(post(VALID) * 3, framing_broken=False, answers=3)
    assert hf.judge(pipelined, [ok, ok], closed=False, timed_out=True) == "2 of 3 pipelined answers"
