"""Request bodies for the HTTP fuzz drawn from the Messages spec: the Hypothesis strategies the
gRPC converters are tested with (``tests/grpc/strategies.py``: ``request`` and
``count_tokens_request``, valid shapes with optional members left out, unknown members, nulls and
future types), then broken one way each.

Drawing from Hypothesis takes milliseconds a body, far too slow for ~1,400 inputs a second, so a
run draws a pool once (``SpecBodies.drawn``, seeded by the run's seed, in a process of its own)
and each input takes a body from it and applies one of ``MUTATIONS`` with the input's own random
generator: the inputs are the same for the same seed.

- ``as_drawn``: the body as the spec's strategy gave it;
- ``wrong_type``: one member (anywhere in the body) given a value of another JSON type;
- ``missing``: one member removed (half the time a required top-level one);
- ``unknown``: one member added with a name the spec does not have;
- ``deep``: one value replaced by arrays or objects nested 100 to 50,000 levels;
- ``huge_string``: one string made 100,000 to 1,000,000 characters long;
- ``invalid_utf8``: bytes that are not UTF-8 (or a raw NUL or line break) inside a string;
- ``lone_surrogate``: an unpaired surrogate inside a string, escaped (``\\ud800``) or raw;
- ``bad_number``: a number out of range or not JSON (``1e999``, ``NaN``, 400 digits, ``01``);
- ``duplicate_key``: a member written twice with different values;
- ``cut``: the body cut short (the content-length still matching).
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MUTATIONS", "SpecBodies"]

MUTATIONS = (
    "as_drawn",
    "wrong_type",
    "missing",
    "unknown",
    "deep",
    "huge_string",
    "invalid_utf8",
    "lone_surrogate",
    "bad_number",
    "duplicate_key",
    "cut",
)
MUTATION_WEIGHTS = (4, 4, 3, 1, 1, 1, 2, 2, 1, 1, 1)
COUNT_TOKENS_SHARE = 0.2  # of the inputs, a count_tokens body to /v1/messages/count_tokens

REQUIRED = {
    "/v1/messages": ("model", "max_tokens", "messages"),
    "/v1/messages/count_tokens": ("model", "messages"),
}
# A value of each JSON type, to put where another type belongs.
OTHER_TYPES: tuple[object, ...] = (None, True, 0, -1, 1 << 70, 1.5, "", "x", [], {}, ["a"], {"type": "zz"})
BAD_UTF8 = (
    b"\xff",
    b"\x80",
    b"\xc3",  # a sequence cut short
    b"\xc3\x28",
    b"\xc0\xaf",  # overlong
    b"\xed\xa0\x80",  # a surrogate, encoded
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\x00",  # control characters must be escaped in JSON strings
    b"\n",
)
LONE_SURROGATES = (b"\\ud800", b"\\udc80", b"\\ud800\\u0041", b"\\udfff\\ud800", b"\xed\xb2\x80")
BAD_NUMBERS = (
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"-0",
    b"1" + b"0" * 400,
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1.0e-400",
    b"0x10",
    b"01",
    b"1.",
)
# Stand-ins put in the body before it is written out, replaced in the text afterwards.
_MARK = "@SPEC-FUZZ@"
_MARK_BYTES = _MARK.encode()
_MARK_JSON = json.dumps(_MARK).encode()


class SpecBodies:
    """A pool of Messages and count_tokens bodies (JSON text) drawn from the spec's strategies,
    and ``draw(rng)``: one of them, broken one way."""

    def __init__(self, messages: Sequence[str], count_tokens: Sequence[str]) -> None:
        if not messages or not count_tokens:
            raise ValueError("an empty pool")
        self.messages = tuple(messages)
        self.count_tokens = tuple(count_tokens)

    def __len__(self) -> int:
        return len(self.messages) + len(self.count_tokens)

    @classmethod
    def drawn(cls, size: int, seed: int) -> SpecBodies:
        """``size`` Messages bodies and ``size`` count_tokens bodies, the same for the same seed.

        Drawn in a process of its own: Hypothesis also draws values from the constants of the
        local modules loaded at the time, so here the pool would depend on what the caller had
        imported (``python -m reliability`` loads every campaign)."""
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(
            [sys.executable, "-m", "reliability.spec_json", str(size), str(seed)],
            cwd=root,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
            },
            capture_output=True,
            check=True,
        )
        drawn = json.loads(done.stdout)
        return cls(drawn["messages"], drawn["count_tokens"])

    def draw(self, rng: random.Random) -> tuple[str, bytes, bytes]:
        """(mutation, path, body) for one input."""
        if rng.random() < COUNT_TOKENS_SHARE:
            path, text = "/v1/messages/count_tokens", rng.choice(self.count_tokens)
        else:
            path, text = "/v1/messages", rng.choice(self.messages)
        kind = rng.choices(MUTATIONS, MUTATION_WEIGHTS)[0]
        return kind, path.encode(), mutate(kind, json.loads(text), path, rng)


def _draw(size: int, seed: int) -> dict[str, list[str]]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    # Imported by name: the tests' strategies are not part of the typed code.
    gs: Any = importlib.import_module("tests.grpc.strategies")
    out: dict[str, list[str]] = {"messages": [], "count_tokens": []}

    @hypothesis_seed(seed)
    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(gs.request, gs.count_tokens_request))
    def draw(values: tuple[dict[str, Any], dict[str, Any]]) -> None:
        out["messages"].append(json.dumps(values[0], ensure_ascii=False))
        out["count_tokens"].append(json.dumps(values[1], ensure_ascii=False))

    draw()
    return out


# --- mutations ------------------------------------------------------------------------------------


def _slots(value: object, out: list[tuple[Any, Any]], depth: int = 0) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value inside ``value``, outermost first."""
    if depth > 40:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((value, k))
            _slots(v, out, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((value, i))
            _slots(v, out, depth + 1)
    return out


def _strings(body: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(c, k) for c, k in _slots(body, []) if isinstance(c[k], str)]


def _dicts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [body] + [c[k] for c, k in _slots(body, []) if isinstance(c[k], dict)]


def _write(body: dict[str, Any], rng: random.Random) -> bytes:
    return json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _marked(body: dict[str, Any], rng: random.Random, replacement: bytes, in_string: bool) -> bytes:
    """``body`` written out with ``replacement`` in place of a random value (``in_string``: inside a
    random string, keys included)."""
    if in_string:
        strings = _strings(body)
        if strings and rng.random() < 0.8:
            container, key = rng.choice(strings)
            s = container[key]
            at = rng.randint(0, len(s))
            container[key] = s[:at] + _MARK + s[at:]
        else:  # in a member's name
            target = rng.choice(_dicts(body))
            name = rng.choice(list(target) or ["model"])
            target[name[:1] + _MARK + name[1:]] = target.pop(name, "x")
        return _write(body, rng).replace(_MARK_BYTES, replacement, 1)
    slots = _slots(body, [])
    container, key = rng.choice(slots) if slots else (body, "model")
    container[key] = _MARK
    return _write(body, rng).replace(_MARK_JSON, replacement, 1)


def mutate(kind: str, body: dict[str, Any], path: str, rng: random.Random) -> bytes:
    """``body`` (a fresh copy: it is changed) broken as ``kind`` says, written out."""
    slots = _slots(body, [])
    if kind == "as_drawn":
        return _write(body, rng)
    if kind == "wrong_type":
        container, key = rng.choice(slots) if slots else (body, "model")
        old = container[key]
        container[key] = rng.choice([v for v in OTHER_TYPES if type(v) is not type(old)])
        return _write(body, rng)
    if kind == "missing":
        if rng.random() < 0.5 or not slots:
            body.pop(rng.choice(REQUIRED[path]), None)
        else:
            container, key = rng.choice(slots)
            del container[key]
        return _write(body, rng)
    if kind == "unknown":
        target = rng.choice(_dicts(body))
        target[rng.choice(["zz_future", "x", "", "\u00e9t\u00e9", "type ", "$ref"])] = rng.choice(OTHER_TYPES)
        return _write(body, rng)
    if kind == "deep":
        n = rng.choice((100, 1000, 5000, 50_000))
        nested = b"[" * n + b"1" + b"]" * n if rng.random() < 0.5 else b'{"a":' * n + b"1" + b"}" * n
        return _marked(body, rng, nested, in_string=False)
    if kind == "huge_string":
        n = rng.choice((100_000, 100_000, 300_000, 1_000_000))
        strings = _strings(body)
        container, key = rng.choice(strings) if strings else (body, "model")
        container[key] = rng.choice(("x", "\u00e9", "\U0001f600", " ", "\\")) * n
        return _write(body, rng)
    if kind == "invalid_utf8":
        return _marked(body, rng, rng.choice(BAD_UTF8), in_string=True)
    if kind == "lone_surrogate":
        return _marked(body, rng, rng.choice(LONE_SURROGATES), in_string=True)
    if kind == "bad_number":
        numbers = [(c, k) for c, k in slots if type(c[k]) in (int, float)]
        if numbers and rng.random() < 0.8:
            container, key = rng.choice(numbers)
            container[key] = _MARK
            return _write(body, rng).replace(_MARK_JSON, rng.choice(BAD_NUMBERS), 1)
        return _marked(body, rng, rng.choice(BAD_NUMBERS), in_string=False)
    if kind == "duplicate_key":
        target = rng.choice([d for d in _dicts(body) if d] or [body])
        name = rng.choice(list(target) or ["model"])
        target[_MARK] = rng.choice(OTHER_TYPES)
        return _write(body, rng).replace(_MARK_JSON, json.dumps(name).encode(), 1)
    if kind == "cut":
        text = _write(body, rng)
        return text[: rng.randrange(len(text))]
    raise ValueError(f"unknown mutation {kind!r}")


if __name__ == "__main__":  # the pool for ``SpecBodies.drawn``, as JSON on stdout
    json.dump(_draw(int(sys.argv[1]), int(sys.argv[2])), sys.stdout)
