"""Fuzzing the HTTP door at the byte level, over raw sockets, against the sidecar as it ships
(on its built-in mock model).

Each input is sent on a fresh connection; the client then half-closes nothing and reads until
the server answers and closes, or answers a complete response, or the per-input timeout passes.
Inputs come from seeded generators (``GENERATORS``, and ``spec_json``, which ``run`` adds with
its pool), each of which knows whether the framing it produces is broken (then a closed
connection without an answer is acceptable) or not (then an answer is required):

- ``request_line``: methods, targets and versions, valid and not (long, non-ASCII, NUL, CR/LF);
- ``headers``: names and values with CR, LF, NUL, obs-fold, very long or duplicated, bad
  ``content-length`` values, every ``content-length`` / ``transfer-encoding`` combination;
- ``chunked``: chunked bodies with bad sizes, extensions, trailers, missing terminators;
- ``cut``: bodies shorter than their ``content-length`` (the client stops sending and waits);
- ``pipelined``: several requests in one write, valid and not, answered in order;
- ``json``: bodies for ``POST /v1/messages`` built here from the Messages fields and then
  broken: wrong types, missing and unknown fields, deep nesting, huge strings, invalid UTF-8,
  lone surrogates, numbers out of range;
- ``spec_json``: bodies drawn from the spec itself, the Hypothesis strategies of
  ``tests/grpc/strategies.py`` (every block, tool and option type, nested), from a pool drawn
  once per run with the run's seed (``spec_json.SpecBodies``), each then sent as drawn or broken
  one way: a member of the wrong type, missing or unknown, nesting to 50,000 levels, a huge
  string, invalid UTF-8 or a lone surrogate inside a string, a number out of range or not JSON,
  a duplicate key, a cut. A share goes to ``/v1/messages/count_tokens``.

Judged: every answer is a complete HTTP/1.1 response; a 4xx carries the Anthropic error
envelope (``{"type": "error", "error": {"type", "message"}}``) as JSON; nothing is 5xx (a 529
``overloaded_error`` with ``retry-after`` excepted); no connection stays open past the timeout
without an answer; the sidecar's log holds no traceback; and the sidecar still answers a normal
request at the end.

After the inputs, and before that last check, the fixed list of slow and stuck clients of
``http_slow`` runs once against the same sidecar (a byte at a time, past the timeouts, a
slowloris crowd, streams and pipelined answers never read, a slow reader, half-closes), each
case judged on its own terms and reported on a line of its own.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import http_slow
from .http_wire import VALID, Response, answer_problem, parse_responses, post
from .sidecar_process import SidecarProcess
from .spec_json import SpecBodies

INPUT_TIMEOUT_S = 3.0  # the server's header and body timeouts are 1 s here


@dataclass
class Input:
    data: bytes
    framing_broken: bool  # a close without an answer is acceptable
    answers: int = 1  # complete responses expected before the close (pipelining)
    kind: str = ""  # how a spec_json input was broken


def _junk(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def gen_request_line(rng: random.Random) -> Input:
    method = rng.choice(
        [
            b"GET",
            b"POST",
            b"PUT",
            b"DELETE",
            b"HEAD",
            b"OPTIONS",
            b"PATCH",
            b"CONNECT",
            b"TRACE",
            b"post",
            b"G\x00T",
            b"",
            b"X" * rng.randint(1, 300),
            _junk(rng, 5),
        ]
    )
    target = rng.choice(
        [
            b"/v1/messages",
            b"/v1/models",
            b"/v1/messages/count_tokens",
            b"/",
            b"*",
            b"/v1/" + b"a" * rng.randint(1, 20000),
            b"/v1/m\xc3\xa9",
            b"/%00",
            b"/v1/../etc",
            b"http://evil/v1/messages",
            b"",
            b"/v1/messages?x=" + _junk(rng, 10).replace(b" ", b""),
        ]
    )
    version = rng.choice(
        [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"HTTP/1.1 extra", b"", b"http/1.1"]
    )
    sep = rng.choice([b" ", b" ", b" ", b"  ", b"\t"])
    line = method + sep + target + sep + version
    end = rng.choice([b"\r\n", b"\r\n", b"\n", b"\r"])
    body = VALID if method == b"POST" else b""
    data = line + end + b"host: s\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    valid_shape = (
        sep == b" " and end == b"\r\n" and version in (b"HTTP/1.1", b"HTTP/1.0") and b"\x00" not in method
    )
    return Input(data, framing_broken=not valid_shape)


def gen_headers(rng: random.Random) -> Input:
    name = rng.choice(
        [
            b"x-test",
            b"anthropic-beta",
            b"x-api-key",
            b"content-type",
            b"host",
            b"user-agent",
            b"x" * rng.randint(1, 20000),
            b"bad name",
            b"bad\x00name",
            b"",
            b"x-\xff",
        ]
    )
    value = rng.choice(
        [
            b"ok",
            b"a\rb",
            b"a\nb",
            b"a\x00b",
            b"v" * rng.randint(1, 100_000),
            b"\xff\xfe",
            b" padded ",
            b"multi\r\n folded",
            b"application/json; charset=utf-8",
        ]
    )
    extras = b"".join(
        rng.choice(
            [
                b"content-length: 5\r\n",
                b"content-length: -1\r\n",
                b"content-length: 1e3\r\n",
                b"content-length: 99999999999999999999\r\n",
                b"transfer-encoding: chunked\r\n",
                b"transfer-encoding: gzip\r\n",
                b"transfer-encoding: chunked, gzip\r\n",
                b"transfer-encoding: identity\r\n",
                b"expect: 100-continue\r\n",
                b"connection: close\r\n",
                b"connection: keep-alive, upgrade\r\nupgrade: websocket\r\n",
                b"",
            ]
        )
        for _ in range(rng.randint(0, 3))
    )
    data = post(VALID, name + b": " + value + b"\r\n" + extras)
    return Input(data, framing_broken=True)


def gen_chunked(rng: random.Random) -> Input:
    parts = []
    body = VALID
    while body:
        n = rng.randint(1, 40)
        piece, body = body[:n], body[n:]
        size = rng.choice(
            [f"{len(piece):x}".encode()] * 6
            + [b"zz", b"-1", b"", b"ffffffffffffffffff", f"{len(piece):x};ext=1".encode()]
        )
        parts.append(size + b"\r\n" + piece + b"\r\n")
    tail = rng.choice([b"0\r\n\r\n", b"0\r\n\r\n", b"0\r\nx-trailer: 1\r\n\r\n", b"", b"0\r\n"])
    data = (
        b"POST /v1/messages HTTP/1.1\r\nhost: s\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + b"".join(parts) + tail
    )
    return Input(data, framing_broken=True)


def gen_cut(rng: random.Random) -> Input:
    full = post(VALID)
    head_end = full.index(b"\r\n\r\n") + 4
    cut = rng.randint(0, len(full) - 1)
    return Input(full[:cut], framing_broken=True, answers=1 if cut >= head_end else 0)


def gen_pipelined(rng: random.Random) -> Input:
    reqs = [
        rng.choice(
            [
                post(VALID),
                b"GET /v1/models HTTP/1.1\r\nhost: s\r\n\r\n",
                post(b"{bad json"),
                b"GET /healthz HTTP/1.1\r\nhost: s\r\n\r\n",
            ]
        )
        for _ in range(rng.randint(2, 4))
    ]
    return Input(b"".join(reqs), framing_broken=False, answers=len(reqs))


_STRINGS: list[object] = [
    "",
    "x" * 100_000,
    "\udc80",
    "caf\u00e9",
    "\x00",
    "a" * 70,
    "mcp__server__tool_" * 8,
]


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 6 else 5)
    if kind == 0:
        return rng.choice(_STRINGS)
    if kind == 1:
        return rng.choice([0, -1, 1 << 70, 1.5, float("1e308"), True, None])
    if kind == 2:
        return rng.choice([[], {}, "user", "assistant", "text", "image", "tool_use"])
    if kind == 3:
        return rng.choice([{"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "base64"}}])
    if kind == 4:
        return rng.choice(["claude-sonnet-4-6", "claude\r\nx-injected: 1", "m" * 1000, 7])
    if kind < 7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(["type", "role", "content", "text", "x", "source", "id", "input"]): _value(rng, depth + 1)
        for _ in range(rng.randint(0, 4))
    }


def gen_json(rng: random.Random) -> Input:
    body: dict[str, object] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    for _ in range(rng.randint(1, 4)):
        field_name = rng.choice(
            [
                "model",
                "max_tokens",
                "messages",
                "system",
                "tools",
                "tool_choice",
                "stream",
                "temperature",
                "metadata",
                "stop_sequences",
                "thinking",
                "unknown_field",
            ]
        )
        if rng.random() < 0.2:
            body.pop(field_name, None)
        else:
            body[field_name] = _value(rng)
    deep = rng.choice([100, 1000, 5000]) if rng.random() < 0.1 else 0
    if deep:
        body["messages"] = [{"role": "user", "content": "@DEEP@"}]
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if deep:  # written out: json.dumps would recurse that deep
        text = text.replace(b'"@DEEP@"', b"[" * deep + b'"deep"' + b"]" * deep)
    if rng.random() < 0.15:
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"}"]) + text[i:]
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text))]
    path = b"/v1/messages/count_tokens" if rng.random() < 0.2 else b"/v1/messages"
    return Input(post(text, path=path), framing_broken=False)


def gen_spec_json(pool: SpecBodies, rng: random.Random) -> Input:
    kind, path, body = pool.draw(rng)
    return Input(post(body, path=path), framing_broken=False, kind=kind)


GENERATORS: dict[str, Callable[[random.Random], Input]] = {
    "request_line": gen_request_line,
    "headers": gen_headers,
    "chunked": gen_chunked,
    "cut": gen_cut,
    "pipelined": gen_pipelined,
    "json": gen_json,
}


def judge(inp: Input, responses: list[Response], closed: bool, timed_out: bool) -> str | None:
    """None when the server's behaviour for ``inp`` is acceptable, else what is wrong. An answer
    to HEAD has no body to check: its content-type must still say JSON."""
    head = inp.data.startswith(b"HEAD ")
    for r in responses:
        problem = answer_problem(r, head)
        if problem is not None:
            return problem
    if timed_out and not responses:
        return f"no answer and no close within {INPUT_TIMEOUT_S:g} s"
    if not responses and not inp.framing_broken and inp.answers:
        return "closed without an answer"
    if len(responses) < inp.answers and not inp.framing_broken and not closed:
        return f"{len(responses)} of {inp.answers} pipelined answers"
    return None


async def _send_one(port: int, inp: Input) -> tuple[list[Response], bool, bool]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = inp.data.startswith(b"HEAD ")
    try:
        writer.write(inp.data)
        await writer.drain()
        data = b""
        deadline = time.monotonic() + INPUT_TIMEOUT_S
        closed = timed_out = False
        responses: list[Response] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                timed_out = True
                break
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            responses, _ = parse_responses(data, head)
            if len(responses) >= max(inp.answers, 1):
                break
        responses, _ = parse_responses(data, head)
        return responses, closed, timed_out
    finally:
        writer.transport.abort()


def config(admin_port: int, http_port: int, grpc_port: int) -> str:
    return f"""
listeners:
  http: {{port: {http_port}, header_timeout: 1.0, body_timeout: 1.0, send_timeout: 5.0}}
  grpc: {{port: {grpc_port}}}
admin: {{port: {admin_port}}}
upstreams: {{m: {{provider: mock}}}}
routes: [{{match: "*", upstream: m}}]
"""


@dataclass
class Tally:
    by_generator: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    spec_kinds: Counter[str] = field(default_factory=Counter)  # spec_json inputs by mutation
    spec_statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


# Most inputs wait out a 1 s header or body timeout, so the rate is set by how many wait at
# once: 48 connections made 269 inputs/s, 256 make about 990/s with the same answers.
CONCURRENCY = 256
# Bodies drawn from the spec's strategies (of each kind: Messages and count_tokens) once per run,
# for the spec_json inputs to break.
SPEC_POOL = 200


async def run(inputs: int, seed: int = 5, concurrency: int = CONCURRENCY) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    tally = Tally()
    t0 = time.perf_counter()
    pool = SpecBodies.drawn(SPEC_POOL, seed)
    pool_s = time.perf_counter() - t0
    generators: dict[str, Callable[[random.Random], Input]] = {
        **GENERATORS,
        "spec_json": functools.partial(gen_spec_json, pool),
    }
    names = list(generators)
    async with SidecarProcess(config) as sidecar:
        port = sidecar.http_port
        queue = list(range(inputs))
        started = time.perf_counter()

        async def worker() -> None:
            while queue:
                i = queue.pop()
                name = names[i % len(names)]
                inp = generators[name](random.Random(rng.random() * 1e18 + i))
                tally.by_generator[name] += 1
                if inp.kind:
                    tally.spec_kinds[inp.kind] += 1
                try:
                    responses, closed, timed_out = await _send_one(port, inp)
                    problem = judge(inp, responses, closed, timed_out)
                except (ValueError, ConnectionError, OSError) as exc:
                    problem, responses = f"{type(exc).__name__}: {exc}", []
                statuses = [str(r.status) for r in responses] or ["closed"]
                tally.statuses.update(statuses)
                if inp.kind:
                    tally.spec_statuses.update(statuses)
                if problem is not None and len(tally.violations) < 40:
                    tally.violations.append(f"{name} #{i}: {problem}; input {inp.data[:160]!r}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        slow_started = time.perf_counter()
        door = http_slow.Door(sidecar.http_port, sidecar.admin_url, sidecar.rss_kb)
        slow = await http_slow.run_all(door)
        slow_s = time.perf_counter() - slow_started
        for result in slow:
            tally.violations += [f"slow client {result.name}: {p}" for p in result.problems]
        # Still serving?
        ok = await _send_one(port, Input(post(VALID), framing_broken=False))
        if not ok[0] or ok[0][0].status != 200:
            got = (
                f"HTTP {ok[0][0].status}: {ok[0][0].body[:200]!r}"
                if ok[0]
                else f"closed={ok[1]} timed out={ok[2]}"
            )
            tally.violations.append(
                f"the sidecar no longer answers a valid request after the fuzzing ({got})"
            )
        tally.violations += sidecar.log_problems()
    report = [
        f"http_fuzz: {inputs} inputs in {elapsed:.1f} s ({inputs / elapsed:.0f}/s, c={concurrency}): "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.by_generator.items())),
        "  answers: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.statuses.items())),
        f"  spec_json: a pool of {len(pool)} bodies drawn in {pool_s:.1f} s; broken: "
        + ", ".join(f"{k} {v}" for k, v in tally.spec_kinds.most_common())
        + "; answers: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.spec_statuses.items())),
        f"  slow clients, {len(slow)} cases in {slow_s:.1f} s:",
        *(f"    {r.name}: {r.outcome}{' (FAILED)' if r.problems else ''}" for r in slow),
        f"  violations {len(tally.violations)}",
    ]
    return report, tally.violations
