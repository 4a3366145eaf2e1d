"""The gRPC fuzz campaign: malformed input on every method of ``sidecar.messages.v1.Messages``,
over a real socket, against the sidecar as it ships (on its mock upstream, with admission on).

Inputs start from a pool of seed requests per method: Hypothesis-generated API bodies
(``tests/grpc/strategies.py``, with their unknown members, nulls and future types) converted to
protobuf, plus a few plain valid ones. A seeded generator then mutates each input, one way each
(``MUTATIONS``): random bit flips, truncation, appended garbage, an unknown field number (at the
top or inside a oneof's message: an unknown oneof case), a field sent with the wrong wire type,
wrong JSON in a JSON-text field (``*_json`` and the fields marked ``(json_text)``: invalid,
non-object, duplicate keys, 100,000 levels deep), a huge repeated field, or the seed unchanged.
Byte mutations go through a generic channel call (``request_serializer=None``: raw bytes, so
undecodable protobuf is sent too); the others through the generated stubs. Independently, a share
of the calls get bad metadata (20 KB or 200 KB values, a wrong, missing or repeated
``x-api-key``, a ``-bin`` key of random bytes, a bad ``traceparent``) or a deadline of 0 or
1 ms; and 1 % are written as raw HTTP/2 frames (``sweep.raw_grpc_call``) with a metadata value
grpcio's client would refuse to send (CR/LF and a header line after it, a bare CR, a NUL,
non-ASCII bytes): those must end with trailers (a status) or a stream reset within 10 s.

Judging each call (``judge``): it must end with a gRPC status within ``HANG_S`` (the call's
deadline is longer, so a DEADLINE_EXCEEDED on a normal call is a hang). Never UNKNOWN (an
exception our code let escape), never the sidecar's own "Internal server error". When our code
ran (the bytes decode as the request message, the metadata was accepted by gRPC and the deadline
was not tiny), an error status must carry the ``anthropic-error-type`` trailer. Undecodable bytes
may instead get grpcio's own clean status (INTERNAL, "failed to deserialize"-style details);
metadata gRPC itself refuses may get gRPC's own status. Afterwards: no traceback and no key in the sidecar's log, and the
sidecar still answers a normal request on every method.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from grpc import aio as grpc_aio
from grpc._cython import cygrpc  # type: ignore[attr-defined]

from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2 as pb
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from .sidecar_process import SidecarProcess
from .sweep import raw_grpc_call

KEY = "sk-client-fuzz"
HANG_S = 15.0  # no call may take longer to end (the mock answers in milliseconds)
DEADLINE_S = 30.0  # the deadline of a call that is not given a tiny one
CONCURRENCY = 24
SERVICE = "/sidecar.messages.v1.Messages/"
METHODS: dict[str, tuple[type[ProtoMessage], bool]] = {
    # name: (request type, server streaming)
    "CreateMessage": (pb.CreateMessageRequest, False),
    "StreamMessage": (pb.CreateMessageRequest, True),
    "CountTokens": (pb.CountTokensRequest, False),
    "ListModels": (pb.ListModelsRequest, False),
    "GetModel": (pb.GetModelRequest, False),
}
METHOD_WEIGHTS = (35, 25, 20, 10, 10)
MUTATIONS = (
    "none",
    "bitflip",
    "truncate",
    "garbage",
    "unknown_field",
    "unknown_oneof_case",
    "wrong_wire_type",
    "bad_json",
    "huge_repeated",
)
MUTATION_WEIGHTS = (8, 20, 14, 12, 10, 8, 6, 16, 2)
BYTE_MUTATIONS = frozenset({"bitflip", "truncate", "garbage", "unknown_field", "wrong_wire_type"})
# Wrong JSON for JSON-text fields: invalid, not an object, duplicate keys, absurdly deep, huge.
BAD_JSON = (
    "{bad",
    "[",
    "",
    "nul",
    "NaN",
    "1e999999",
    '"just a string"',
    "[1, 2, 3]",
    "42",
    "null",
    '{"a": 1, "a": 2}',
    '{"model": 5}',
    '{"type": "zz_future", "x": [1, {"y": null}]}',
    '{"\\ud800": 1}',
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"k": "' + "x" * 1_000_000 + '"}',
)


def _config(admin_port: int, http_port: int, grpc_port: int) -> str:
    return f"""
listeners: {{http: {{port: {http_port}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  tiers:
    t: {{concurrency: 10000}}
  keys:
    - {{name: fuzz, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, tier: t}}
"""


# --- inputs ---------------------------------------------------------------------------------


def _plain_seeds() -> dict[str, list[ProtoMessage]]:
    body = {
        "model": "claude-fuzz-1",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "fuzz"}],
    }
    blocks = {
        **body,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": "b"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "c", "cache_control": {"type": "ephemeral"}}],
            },
        ],
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "u"},
        "temperature": 0.5,
    }
    count = {k: v for k, v in blocks.items() if k in ("model", "messages", "system", "tools", "tool_choice")}
    return {
        "CreateMessage": [convert.request_to_proto(body), convert.request_to_proto(blocks)],
        "StreamMessage": [convert.request_to_proto(body), convert.request_to_proto(blocks)],
        "CountTokens": [convert.count_tokens_request_to_proto(count)],
        "ListModels": [pb.ListModelsRequest(), pb.ListModelsRequest(limit=2, lifecycle=["active"])],
        "GetModel": [pb.GetModelRequest(model_id="claude-fuzz-1"), pb.GetModelRequest(model_id="")],
    }


def seed_pool(per_method: int, seed: int) -> dict[str, list[ProtoMessage]]:
    """Plain valid seeds, and ``per_method`` Hypothesis-generated ones for each request type."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    # Imported by name: the tests' strategies are not part of the typed code.
    gs: Any = importlib.import_module("tests.grpc.strategies")

    pool = _plain_seeds()
    drawn: dict[str, list[ProtoMessage]] = {"messages": [], "count": [], "list": []}
    list_params = st.fixed_dictionaries(
        {},
        optional={
            "limit": st.integers(-5, 2000),
            "after_id": gs.text,
            "before_id": gs.text,
            "lifecycle": st.lists(st.sampled_from(["active", "deprecated", "retired", "zz"]), max_size=3),
        },
    )

    @settings(
        max_examples=per_method,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(gs.request, gs.count_tokens_request, list_params))
    def draw(values: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> None:
        for name, value, to_proto in zip(
            ("messages", "count", "list"),
            values,
            (
                convert.request_to_proto,
                convert.count_tokens_request_to_proto,
                convert.list_models_request_to_proto,
            ),
            strict=True,
        ):
            try:
                drawn[name].append(to_proto(value))
            except Exception:  # a value the schema cannot carry: not a seed
                pass

    del seed  # derandomized: the pool is the same whatever the run's seed
    draw()
    pool["CreateMessage"] += drawn["messages"]
    pool["StreamMessage"] += drawn["messages"]
    pool["CountTokens"] += drawn["count"]
    pool["ListModels"] += drawn["list"]
    pool["GetModel"] += [pb.GetModelRequest(model_id=m) for m in ("zz", "a" * 5000, "é", "../../etc/passwd")]
    return pool


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int, rng: random.Random) -> bytes:
    """One encoded field: tag, then a payload of that wire type (random)."""
    tag = _varint((number << 3) | wire)
    if wire == 0:
        return tag + _varint(rng.getrandbits(rng.choice((7, 32, 64))))
    if wire == 1:
        return tag + rng.randbytes(8)
    if wire == 5:
        return tag + rng.randbytes(4)
    payload = rng.randbytes(rng.randint(0, 40))  # wire 2: length-delimited
    return tag + _varint(len(payload)) + payload


# The oneof messages reachable from a request, and the path to put one there.
def _with_unknown_oneof_case(request: ProtoMessage, rng: random.Random) -> ProtoMessage:
    r: Any = request.__class__()
    r.CopyFrom(request)
    out: ProtoMessage = r
    unknown = _field(rng.choice((30, 99, 999, 1001, 4096, 536_870_911)), 2, rng)
    if isinstance(r, pb.CreateMessageRequest | pb.CountTokensRequest):
        where = rng.choice(("tool", "tool_choice", "thinking", "block"))
        target: Any
        if where == "tool":
            target = r.tools.add()
        elif where == "tool_choice":
            target = r.tool_choice
        elif where == "thinking":
            target = r.thinking
        else:
            target = r.messages.add(role="user").content_blocks.items.add()
        if rng.random() < 0.5:
            target.MergeFromString(unknown)  # an unknown case number
        else:  # the unknown_json case holding something that is no object of an unknown type
            target.unknown_json = rng.choice(BAD_JSON[:14])
        return out
    r.MergeFromString(unknown)
    return out


def _json_fields(m: ProtoMessage) -> list[tuple[ProtoMessage, str]]:
    """(message, field name) of every string JSON-text field reachable in ``m``'s set fields,
    and of ``m``'s own ``extra_json``."""
    out: list[tuple[ProtoMessage, str]] = []
    names = {f.name for f in m.DESCRIPTOR.fields}
    for name in ("extra_json", "unknown_json"):
        if name in names:
            out.append((m, name))
    for fd, value in m.ListFields():
        if fd.message_type is not None:
            values = value if fd.is_repeated else [value]
            for v in values[:3]:
                out += _json_fields(v)
        elif fd.type == fd.TYPE_STRING and fd.name not in ("extra_json", "unknown_json"):
            opts = fd.GetOptions()
            if any(ext.name == "json_text" and val for ext, val in opts.ListFields()) and not fd.is_repeated:
                out.append((m, fd.name))
    return out


def _with_bad_json(request: ProtoMessage, rng: random.Random) -> ProtoMessage:
    r: Any = request.__class__()
    r.CopyFrom(request)
    out: ProtoMessage = r
    fields = _json_fields(r)
    if fields:
        target, name = rng.choice(fields)
        if name == "unknown_json" and target.WhichOneof(target.DESCRIPTOR.oneofs[0].name) not in (None, name):
            target, name = r, "extra_json" if "extra_json" in {f.name for f in r.DESCRIPTOR.fields} else name
        setattr(target, name, rng.choice(BAD_JSON))
    return out


def _with_huge_repeated(request: ProtoMessage, rng: random.Random) -> ProtoMessage:
    r: Any = request.__class__()
    r.CopyFrom(request)
    out: ProtoMessage = r
    n = rng.choice((10_000, 100_000, 300_000))
    if isinstance(r, pb.CreateMessageRequest):
        if rng.random() < 0.5:
            r.stop_sequences.extend(["s"] * n)
        else:
            r.messages.extend([pb.MessageParam(role="user", content_text="x")] * (n // 10))
    elif isinstance(r, pb.CountTokensRequest):
        r.messages.extend([pb.MessageParam(role="user", content_text="x")] * (n // 10))
    elif isinstance(r, pb.ListModelsRequest):
        r.lifecycle.extend(["active"] * n)
    else:
        r.model_id = "m" * n
    return out


def mutate(kind: str, request: ProtoMessage, rng: random.Random) -> ProtoMessage | bytes:
    """The mutated input: a message (sent through the stub) or raw bytes."""
    if kind == "none":
        return request
    if kind == "unknown_oneof_case":
        return _with_unknown_oneof_case(request, rng)
    if kind == "bad_json":
        return _with_bad_json(request, rng)
    if kind == "huge_repeated":
        return _with_huge_repeated(request, rng)
    data = bytearray(request.SerializeToString())
    if kind == "bitflip":
        if not data:
            data = bytearray(rng.randbytes(4))
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data) * 8)
            data[i // 8] ^= 1 << (i % 8)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))] if data else bytearray(b"\x0a")
    elif kind == "garbage":
        data += rng.randbytes(rng.randint(1, 64))
    elif kind == "unknown_field":
        at = rng.choice((0, len(data)))  # fields may come in any order
        data[at:at] = _field(rng.randint(30, 999), rng.choice((0, 1, 2, 5)), rng)
    elif kind == "wrong_wire_type":
        number = rng.choice([f.number for f in request.DESCRIPTOR.fields])
        wire = rng.choice((0, 1, 2, 5))
        data += _field(number, wire, rng)
    return bytes(data)


RAW_METADATA = {
    "raw_crlf": b"a\r\nx-injected-fuzz: 1",
    "raw_cr": b"2023-06-01\r",
    "raw_nul": b"a\x00b",
    "raw_non_ascii": "caf\u00e9-\u2603".encode(),
}


def bad_metadata(rng: random.Random) -> tuple[str, tuple[tuple[str, str | bytes], ...]]:
    """(what, metadata) for a call given bad metadata."""
    kind = rng.choice(
        ("huge_20k", "huge_200k", "wrong_key", "no_key", "binary", "dup_key", "bad_traceparent")
    )
    key = ("x-api-key", KEY)
    md: tuple[tuple[str, str | bytes], ...]
    if kind == "huge_20k":
        md = (key, ("anthropic-beta", "b" * 20_000))
    elif kind == "huge_200k":
        md = (key, ("x-huge", "h" * 200_000))
    elif kind == "bad_traceparent":
        md = (
            key,
            ("traceparent", rng.choice(("00-" + "0" * 32 + "-" + "0" * 16 + "-01", "zz", "00-" * 200))),
        )
    elif kind == "wrong_key":
        md = (("x-api-key", rng.choice(("sk-wrong", "", " ", KEY + "x", "Bearer " + KEY))),)
    elif kind == "no_key":
        md = ()
    elif kind == "binary":
        md = (key, ("x-blob-bin", rng.randbytes(64)))
    else:
        md = (key, ("x-api-key", "sk-other"))
    return kind, md


# --- judging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    mutation: str
    decodable: bool  # the bytes parse as the method's request message
    metadata: str  # "ok" or the bad metadata's kind
    deadline: str  # "normal", "0ms" or "1ms"


@dataclass(frozen=True)
class Outcome:
    code: str  # a grpc.StatusCode name, "HANG" (no status within HANG_S) or "CLIENT_REFUSED"
    details: str = ""
    trailers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0


# gRPC's own statuses for metadata it refuses before any handler runs.
_METADATA_REFUSED = {"RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE", "CANCELLED"}


def judge(case: Case, outcome: Outcome) -> str | None:
    """None when the outcome is acceptable; otherwise what is wrong."""
    if outcome.code.startswith("RAW_"):  # raw HTTP/2: how the stream ended, not its status
        return None if outcome.code in ("RAW_END", "RAW_RESET") else f"a raw call ended: {outcome.code}"
    if outcome.code == "CLIENT_REFUSED":
        return None if case.metadata != "ok" else f"the client library refused the call: {outcome.details}"
    if outcome.code == "HANG":
        return f"no status within {HANG_S:g} s"
    trailer = dict(outcome.trailers).get("anthropic-error-type")
    if outcome.code == "UNKNOWN":
        return f"UNKNOWN status: {outcome.details[:200]}"
    if trailer is not None and outcome.details == "Internal server error":
        return "the sidecar's own 'Internal server error' (an unexpected exception)"
    if outcome.code == "OK":
        return None if case.decodable else "OK for bytes that do not decode"
    if case.deadline != "normal":
        # The deadline may pass anywhere: grpc's own DEADLINE_EXCEEDED, or our error status.
        if outcome.code == "DEADLINE_EXCEEDED" or trailer is not None:
            return None
        return f"{outcome.code} without anthropic-error-type under a {case.deadline} deadline"
    if outcome.code == "DEADLINE_EXCEEDED":
        return f"the {DEADLINE_S:g} s deadline passed (a hang)"
    if trailer is not None:
        return None
    if case.metadata != "ok" and outcome.code in _METADATA_REFUSED:
        return None  # gRPC refused the metadata itself, before our code
    if not case.decodable and outcome.code == "INTERNAL" and "serializ" in outcome.details.lower():
        return None  # grpcio's own clean status for undecodable protobuf
    if outcome.code == "RESOURCE_EXHAUSTED" and "message larger than max" in outcome.details.lower():
        return None  # over the listener's max message size: gRPC refuses it before our code
    return f"{outcome.code} without anthropic-error-type: {outcome.details[:200]}"


def decodable(method: str, data: bytes) -> bool:
    try:
        METHODS[method][0].FromString(data)
    except DecodeError:
        return False
    return True


# --- the campaign ---------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_mutation: Counter[str] = field(default_factory=Counter)
    by_metadata: Counter[str] = field(default_factory=Counter)
    by_deadline: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    undecodable: int = 0
    slowest: float = 0.0
    violations: list[str] = field(default_factory=list)
    violation_kinds: Counter[str] = field(default_factory=Counter)

    def add(self, case: Case, outcome: Outcome, what: str) -> None:
        self.calls += 1
        self.by_method[case.method] += 1
        self.by_mutation[case.mutation] += 1
        self.by_metadata[case.metadata] += 1
        self.by_deadline[case.deadline] += 1
        self.codes[outcome.code] += 1
        self.undecodable += not case.decodable
        self.slowest = max(self.slowest, outcome.seconds)
        error_type = dict(outcome.trailers).get("anthropic-error-type")
        if error_type:
            self.error_types[error_type] += 1
        problem = judge(case, outcome)
        if problem is not None:
            self.violation_kinds[problem[:60]] += 1
            if len(self.violations) < 30:
                self.violations.append(f"{what} ({case}): {problem}")


def _trailers(md: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for k, v in md or ():
        out.append((k, v if isinstance(v, str) else v.decode("latin-1")))
    return tuple(out)


async def call_once(
    channel: grpc_aio.Channel, method: str, payload: ProtoMessage | bytes, metadata: Any, timeout: float
) -> Outcome:
    request_type, streaming = METHODS[method]
    if isinstance(payload, bytes):
        serializer: Callable[[Any], bytes] | None = None
    else:
        serializer = request_type.SerializeToString
    path = SERVICE + method
    began = time.perf_counter()
    try:
        async with asyncio.timeout(HANG_S):
            if streaming:
                stream = channel.unary_stream(path, request_serializer=serializer, response_deserializer=None)
                call: Any = stream(payload, metadata=metadata, timeout=timeout)
                async for _ in call:
                    pass
            else:
                unary = channel.unary_unary(path, request_serializer=serializer, response_deserializer=None)
                call = unary(payload, metadata=metadata, timeout=timeout)
                await call
            code = await call.code()
            return Outcome(
                code.name,
                await call.details() or "",
                _trailers(await call.trailing_metadata()),
                time.perf_counter() - began,
            )
    except grpc_aio.AioRpcError as exc:
        return Outcome(
            exc.code().name,
            exc.details() or "",
            _trailers(exc.trailing_metadata()),
            time.perf_counter() - began,
        )
    except TimeoutError:
        return Outcome("HANG", seconds=time.perf_counter() - began)
    except (ValueError, TypeError, grpc_aio.UsageError, cygrpc.ExecuteBatchError) as exc:
        return Outcome("CLIENT_REFUSED", f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - began)


async def _normal_requests(target: str) -> list[str]:
    """Every method answers a plain request after the campaign."""
    problems = []
    async with grpc_aio.insecure_channel(target) as channel:
        stub = pb_grpc.MessagesStub(channel)
        md = (("x-api-key", KEY),)
        seeds = _plain_seeds()
        try:
            message = await stub.CreateMessage(seeds["CreateMessage"][0], metadata=md, timeout=10)
            if not message.content:
                problems.append("CreateMessage after the campaign: an empty message")
            events = [e async for e in stub.StreamMessage(seeds["StreamMessage"][0], metadata=md, timeout=10)]
            if len(events) < 3:
                problems.append(f"StreamMessage after the campaign: {len(events)} events")
            await stub.CountTokens(seeds["CountTokens"][0], metadata=md, timeout=10)
            await stub.ListModels(pb.ListModelsRequest(), metadata=md, timeout=10)
        except grpc_aio.AioRpcError as exc:
            problems.append(f"a normal request after the campaign failed: {exc.code().name} {exc.details()}")
    return problems


async def run(inputs: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    pool = seed_pool(60, seed)
    pool_s = time.perf_counter() - t0
    tally = Tally()
    methods = list(METHODS)
    async with SidecarProcess(_config) as sidecar:
        channels = [grpc_aio.insecure_channel(sidecar.grpc_target) for _ in range(2)]
        counter = iter(range(inputs))
        started = time.perf_counter()
        cpu0 = sidecar.cpu_seconds()

        async def worker(w: int) -> None:
            wrng = random.Random(rng.getrandbits(64))
            channel = channels[w % len(channels)]
            for i in counter:
                method = wrng.choices(methods, METHOD_WEIGHTS)[0]
                mutation = wrng.choices(MUTATIONS, MUTATION_WEIGHTS)[0]
                payload = mutate(mutation, wrng.choice(pool[method]), wrng)
                data = payload if isinstance(payload, bytes) else payload.SerializeToString()
                md_kind = "ok"
                metadata: tuple[tuple[str, str | bytes], ...] = (("x-api-key", KEY),)
                if wrng.random() < 0.08:
                    md_kind, metadata = bad_metadata(wrng)
                deadline, timeout = "normal", DEADLINE_S
                roll = wrng.random()
                if roll < 0.02:
                    deadline, timeout = "0ms", 0.0
                elif roll < 0.04:
                    deadline, timeout = "1ms", 0.001
                # (One DATA frame, within HTTP/2's default frame size and window.)
                if wrng.random() < 0.01 and len(data) <= 16_000:
                    md_kind = wrng.choice(list(RAW_METADATA))
                    headers = [(b"x-api-key", KEY.encode()), (b"anthropic-beta", RAW_METADATA[md_kind])]
                    began = time.perf_counter()
                    ended = await raw_grpc_call(sidecar.grpc_port, SERVICE + method, headers, data)
                    outcome = Outcome(f"RAW_{ended.upper()}", seconds=time.perf_counter() - began)
                    tally.add(
                        Case(method, mutation, decodable(method, data), md_kind, "normal"),
                        outcome,
                        f"input {i}",
                    )
                    continue
                case = Case(method, mutation, decodable(method, data), md_kind, deadline)
                outcome = await call_once(channel, method, payload, metadata, timeout)
                tally.add(case, outcome, f"input {i}")

        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
        cpu = sidecar.cpu_seconds() - cpu0
        for channel in channels:
            await channel.close(None)
        after = await _normal_requests(sidecar.grpc_target)
        log_problems = sidecar.log_problems()
    violations = list(tally.violations) + after + log_problems
    if sum(tally.violation_kinds.values()) > len(tally.violations):
        violations.append(
            f"{sum(tally.violation_kinds.values())} violations in all: "
            + "; ".join(f"{k} x{n}" for k, n in tally.violation_kinds.most_common(8))
        )
    rate = tally.calls / elapsed if elapsed else 0.0

    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in c.most_common())

    report = [
        f"grpc_fuzz: {tally.calls} inputs in {elapsed:.1f} s ({rate:.0f} inputs/s, c={CONCURRENCY}, "
        f"sidecar CPU {cpu:.1f} s; seed pool of {sum(len(p) for p in pool.values())} in {pool_s:.1f} s); "
        f"1,000,000 inputs would take {1_000_000 / rate / 60 if rate else 0:.0f} min",
        f"  methods: {fmt(tally.by_method)}",
        f"  mutations: {fmt(tally.by_mutation)}; undecodable {tally.undecodable}",
        f"  metadata: {fmt(tally.by_metadata)}; deadlines: {fmt(tally.by_deadline)}",
        f"  statuses: {fmt(tally.codes)}; slowest call {tally.slowest:.2f} s",
        f"  anthropic-error-type trailers: {fmt(tally.error_types)}",
        f"  a normal request on every method afterwards: {'ok' if not after else 'FAILED'}",
        f"  violations {len(violations)}",
    ]
    return report, violations
