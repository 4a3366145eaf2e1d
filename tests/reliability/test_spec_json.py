"""The HTTP fuzz's spec-drawn bodies (reliability/spec_json.py): a pool drawn from the Messages
strategies, the same for the same seed, and each mutation doing what it says."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from reliability import spec_json as sj

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "temperature": 0.5,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
    "metadata": {"user_id": "u"},
}
PATH = "/v1/messages"


def _mutated(kind: str, seed: int) -> bytes:
    return sj.mutate(kind, json.loads(json.dumps(BODY)), PATH, random.Random(seed))


@pytest.fixture(scope="module")
def pool() -> sj.SpecBodies:
    return sj.SpecBodies.drawn(12, seed=3)


def test_the_pool_is_drawn_from_the_spec_and_the_same_for_a_seed(pool: sj.SpecBodies) -> None:
    assert len(pool.messages) == len(pool.count_tokens) == 12 and len(pool) == 24
    assert sj.SpecBodies.drawn(12, seed=3).messages == pool.messages
    assert sj.SpecBodies.drawn(12, seed=4).messages != pool.messages
    for text in pool.messages:
        body = json.loads(text)
        assert {"model", "max_tokens", "messages"} <= set(body)
    for text in pool.count_tokens:
        assert {"model", "messages"} <= set(json.loads(text))


def test_inputs_are_the_same_for_the_same_random_generator(pool: sj.SpecBodies) -> None:
    first = [pool.draw(random.Random(i)) for i in range(200)]
    assert first == [pool.draw(random.Random(i)) for i in range(200)]
    assert {kind for kind, _, _ in first} == set(sj.MUTATIONS)
    assert {path for _, path, _ in first} == {b"/v1/messages", b"/v1/messages/count_tokens"}


def test_as_drawn_bodies_are_json_and_valid_shapes_stay_valid() -> None:
    for seed in range(20):
        assert json.loads(_mutated("as_drawn", seed)) == BODY


def test_structural_mutations_change_one_thing() -> None:
    for seed in range(30):
        wrong = json.loads(_mutated("wrong_type", seed))
        assert wrong != BODY
        missing = json.loads(_mutated("missing", seed))
        assert len(json.dumps(missing)) < len(json.dumps(BODY))
        unknown = json.loads(_mutated("unknown", seed))
        assert len(json.dumps(unknown)) > len(json.dumps(BODY))
        huge = _mutated("huge_string", seed)
        assert len(huge) >= 100_000 and json.loads(huge)
        cut = _mutated("cut", seed)
        assert len(cut) < len(_mutated("as_drawn", seed)) + 10


def test_text_mutations_break_the_json_or_its_encoding() -> None:
    for seed in range(30):
        deep = _mutated("deep", seed)
        assert deep.count(b"[") >= 100 or deep.count(b'{"a":') >= 100
        bad = _mutated("invalid_utf8", seed)
        with pytest.raises(ValueError):  # not UTF-8, or a raw control character in a string
            json.loads(bad.decode("utf-8"))
        lone = _mutated("lone_surrogate", seed)
        assert any(s in lone for s in sj.LONE_SURROGATES)
        number = _mutated("bad_number", seed)
        assert any(n in number for n in sj.BAD_NUMBERS)
        assert b"@SPEC-FUZZ@" not in deep + bad + lone + number
        duplicate = _mutated("duplicate_key", seed)
        pairs = json.loads(duplicate, object_pairs_hook=lambda kv: kv)

        def names(node: Any) -> list[list[str]]:
            if isinstance(node, list) and all(isinstance(p, tuple) for p in node):
                return [[k for k, _ in node]] + [n for _, v in node for n in names(v)]
            if isinstance(node, list):
                return [n for v in node for n in names(v)]
            return []

        assert any(len(keys) != len(set(keys)) for keys in names(pairs))
