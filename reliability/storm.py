"""The cancellation storm: clients that leave at random points, over both doors.

Each client sends one request and then disconnects (HTTP: its connection is dropped), cancels
(gRPC: ``call.cancel()``) or lets its gRPC deadline pass, after a random delay that lands it in
one of the places a request can be: queued by admission (4 keys, 8 requests in flight each),
waiting for an upstream that has not answered, held before the first delta (the route holds a
stream until then), in a retry's backoff (the first attempt answers 529), or mid-stream (a
trickling answer). Some clients stay to the end.

Half the clients share 4 keys (so some wait in admission's queue); each of the others has a key
of its own, with token limits, so that what admission charged that one request can be read back
and judged (``reliability.charges``): a finished answer exactly its usage, a request that ended
early its input once (the upstream's count once its ``message_start`` was relayed, else the
estimate) and for a stream at least the output its client received and at most what the upstream
wrote, a request that never reached admission nothing.

Afterwards, once the sidecar has settled: no request in flight, no admission lease held and
no request queued (``sidecar_requests_in_flight``, ``sidecar_admission_leases``,
``sidecar_admission_waiting``), no upstream answer left running (every cancelled one was seen
closed by the fake upstream), the event loop's task count (``sidecar_event_loop_tasks``) back to
its value before the storm, no upstream connection busy (``sidecar_upstream_connections``),
every request on a key of its own charged as above, and no traceback or key in the sidecar's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
from grpc import aio as grpc_aio

from sidecar.core.estimate import estimate_input_tokens
from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from . import charges
from .fault_upstream import HOLD, MODEL, FaultUpstream, expected_deltas, input_tokens_of
from .sidecar_process import SidecarProcess

KEYS = [f"sk-client-storm-{i}" for i in range(4)]
CONCURRENCY_PER_KEY = 8
FRESH_KEY = "sk-client-storm-fresh"  # never used in the storm: the charge probe's own cost
MAX_TOKENS = 64
SETTLE_S = 10.0  # how long the sidecar may take to come back to idle after the last client
# What the fake does with each request's first attempt (later attempts answer normally).
KINDS = {"stall": "stall", "hold": HOLD, "retry": "529", "trickle": "trickle", "normal": None}


def _own_key(i: int) -> str:
    return f"sk-client-storm-own-{i}"


def config(url: str, admin_port: int, http_port: int, grpc_port: int, own: Sequence[str] = ()) -> str:
    keys = "\n".join(
        [
            *(
                f"    - {{name: storm-{i}, sha256: {hashlib.sha256(k.encode()).hexdigest()}, tier: t}}"
                for i, k in enumerate(KEYS)
            ),
            *(
                f"    - {{name: own-{i}, sha256: {hashlib.sha256(k.encode()).hexdigest()}, tier: own}}"
                for i, k in enumerate([FRESH_KEY, *own])
            ),
        ]
    )
    return f"""
listeners: {{http: {{port: {http_port}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
upstreams:
  a: {{provider: anthropic, base_url: "{url}", api_key: sk-fault-a, pacing: {{enabled: false}}}}
routes:
  - match: "*"
    policy:
      groups: [{{targets: [{{upstream: a}}]}}]
      retry: {{max_attempts: 2, base_backoff: 0.4, max_backoff: 0.4, jitter: 0}}
      budget: {{max_retries_per_request: 1, ratio: 1.0, min_retries: 100000}}
      timeouts: {{first_byte: 2.0}}
      breaker: {{enabled: false}}
admission:
  period: {charges.PERIOD:.0f}
  tiers:
    t: {{concurrency: {CONCURRENCY_PER_KEY}}}
    own: {{input_tokens_per_minute: {charges.LIMIT}, output_tokens_per_minute: {charges.LIMIT}}}
  keys:
{keys}
  queue: {{max_wait: 3, max_waiting: 1000}}
"""


def _gauge_sum(text: str, name: str, label: str = "") -> float:
    """The sum of ``name``'s samples (those whose labels contain ``label``, e.g. 'state="busy"')."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _idle_figures(admin: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(admin + "/metrics")).text
    return {
        "in_flight": _gauge_sum(text, "sidecar_requests_in_flight"),
        "leases": _gauge_sum(text, "sidecar_admission_leases"),
        "queued": _gauge_sum(text, "sidecar_admission_waiting"),
        "tasks": _gauge_sum(text, "sidecar_event_loop_tasks"),
        "upstream_busy": _gauge_sum(text, "sidecar_upstream_connections", 'state="busy"'),
    }


def _body(key: str, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "stream": stream,
        "metadata": {"user_id": key},
        "messages": [{"role": "user", "content": f"storm {key}"}],
    }


# One TLS context for every client (unused on http://, but httpx builds one per client unless
# given: loading the CA bundle costs ~35 ms of the campaign's CPU per client).
_TLS = ssl.create_default_context()


Seen = tuple[str, list[dict[str, Any]], bool]  # (outcome, events or the JSON message received, whole)


def _http_seen(outcome: str, status: int, raw: bytes, stream: bool) -> Seen:
    """What an HTTP client received: a stream's complete events, or the whole JSON Message."""
    if status != 200:
        return outcome, [], False
    if stream:
        events = []
        for block in raw.replace(b"\r\n", b"\n").split(b"\n\n")[:-1]:  # the last is unterminated
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    events.append(json.loads(line[5:]))
        return outcome, events, any(e.get("type") == "message_stop" for e in events)
    if outcome == "http left":
        return outcome, [], False
    message = json.loads(raw)
    return outcome, [message], message.get("type") == "message"


async def _http_client(url: str, api_key: str, body: dict[str, Any], leave_after: float | None) -> Seen:
    """One client on its own connection; dropped after ``leave_after`` s (None: read it all)."""
    raw = bytearray()
    status = 0
    async with httpx.AsyncClient(base_url=url, timeout=30, verify=_TLS) as client:
        headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}

        async def whole() -> str:
            nonlocal status
            async with client.stream("POST", "/v1/messages", json=body, headers=headers) as r:
                status = r.status_code
                async for chunk in r.aiter_bytes():
                    raw.extend(chunk)
                return f"http {r.status_code}"

        if leave_after is None:
            outcome = await whole()
        else:
            try:
                outcome = await asyncio.wait_for(whole(), leave_after)
            except TimeoutError:
                outcome = "http left"
    return _http_seen(outcome, status, bytes(raw), body["stream"])


async def _grpc_client(
    stub: Any, api_key: str, body: dict[str, Any], leave_after: float | None, how: str
) -> Seen:
    metadata = (("x-api-key", api_key),)
    request = convert.request_to_proto(body)
    timeout = leave_after if how == "deadline" and leave_after is not None else 30.0
    call = (stub.StreamMessage if body["stream"] else stub.CreateMessage)(
        request, metadata=metadata, timeout=timeout
    )
    received: list[dict[str, Any]] = []

    async def whole() -> str:
        if body["stream"]:
            async for event in call:
                received.append(convert.event_from_proto(event))
        else:
            received.append(convert.message_from_proto(await call))
        return "grpc OK"

    try:
        if leave_after is None or how == "deadline":
            outcome = await whole()
        else:
            try:
                outcome = await asyncio.wait_for(whole(), leave_after)
            except TimeoutError:
                call.cancel()
                outcome = "grpc cancelled"
    except grpc_aio.AioRpcError as exc:
        outcome = f"grpc {exc.code().name}"
    whole_answer = outcome == "grpc OK" and (
        not body["stream"] or any(e.get("type") == "message_stop" for e in received)
    )
    return outcome, received, whole_answer


async def run(clients: int, seed: int = 11) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    plan: dict[str, str] = {}

    def chooser(key: str, stream: bool, attempt: int) -> str | None:
        kind = KINDS[plan.get(key, "normal")]
        if attempt > 1 and kind == "529":
            return None
        return kind

    fake = FaultUpstream(chooser=chooser, stall_s=60.0, trickle_s=0.03, hold_s=0.6)
    url = await fake.start()
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    violations: list[str] = []
    # Which clients have a key of their own (their charge is checked), drawn apart from the rest.
    owners = random.Random(seed + 1)
    own = {i: _own_key(i) for i in range(clients) if owners.random() < 0.5}
    checked: dict[str, tuple[str, charges.Request]] = {}  # request key -> (client key, request)
    async with SidecarProcess(lambda a, h, g: config(url, a, h, g, list(own.values()))) as sidecar:
        channel = grpc_aio.insecure_channel(sidecar.grpc_target)
        stub = pb_grpc.MessagesStub(channel)
        # The idle baseline, with the gRPC channel already connected.
        await _grpc_client(stub, KEYS[0], _body("warm", False), None, "stay")
        await asyncio.sleep(0.5)
        idle = await _idle_figures(sidecar.admin_url)

        async def one(i: int) -> None:
            await asyncio.sleep(rng.random() * 1.0)  # arrivals spread over a second
            key = f"s{seed}-{i}"
            kind = rng.choice(list(KINDS))
            plan[key] = kind
            stream = kind in ("hold", "trickle") or rng.random() < 0.5
            door = rng.choice(("http", "grpc"))
            stay = rng.random() < 0.15
            leave_after = None if stay else rng.uniform(0.01, 1.5)
            how = "stay" if stay else ("disconnect" if door == "http" else rng.choice(("cancel", "deadline")))
            kinds[f"{door} {how}"] += 1
            kinds[kind] += 1
            api_key = rng.choice(KEYS)
            api_key = own.get(i, api_key)
            body = _body(key, stream)
            began = time.monotonic()
            try:
                if door == "http":
                    outcome, received, whole = await _http_client(
                        sidecar.http_url, api_key, body, leave_after
                    )
                else:
                    outcome, received, whole = await _grpc_client(stub, api_key, body, leave_after, how)
            except Exception as exc:  # a client-side failure is a finding too
                outcome, received, whole = f"client error {type(exc).__name__}", [], False
                violations.append(f"{key}: {type(exc).__name__}: {exc}")
            if i in own:
                usage = (input_tokens_of(body), len(expected_deltas(key)))
                request = charges.Request(stream, estimate_input_tokens(body), usage, MAX_TOKENS)
                request.received, request.complete = received, whole
                checked[key] = (api_key, request)
            outcomes[outcome] += 1
            took = time.monotonic() - began
            if stay and took > 20:  # every wait on the route is bounded well below that
                arrived = ", ".join(f"{t - began:.1f}" for t in fake.arrivals.get(key, []))
                violations.append(
                    f"{key}: a client that stayed waited {took:.0f} s ({door}, {kind}, {outcome}; "
                    f"attempts reached the upstream after {arrived or 'none'} s)"
                )

        started = time.perf_counter()
        cpu0 = sidecar.cpu_seconds()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = sidecar.cpu_seconds() - cpu0
        # Settle: every figure back to idle, and every upstream answer ended.
        deadline = time.monotonic() + SETTLE_S
        figures = await _idle_figures(sidecar.admin_url)
        while time.monotonic() < deadline:
            figures = await _idle_figures(sidecar.admin_url)
            if figures == idle and fake.unfinished == 0:
                break
            await asyncio.sleep(0.1)
        settled = time.perf_counter() - started - elapsed
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(sidecar.admin_url + "/metrics")).text
        stuck = [
            line
            for line in text.splitlines()
            if line.startswith("sidecar_requests_in_flight{") and not line.endswith(" 0.0")
        ]
        await channel.close(None)
        # What each request on a key of its own was charged (after the figures above: the
        # probes are requests too).
        charged = await charges.read_charges(sidecar.http_url, [k for k, _ in checked.values()], FRESH_KEY)
        ends: Counter[str] = Counter()
        for key, (api_key, request) in sorted(checked.items()):
            request.written = fake.written.get(key, [])
            end, problem = charges.judge(request, charged[api_key])
            ends[end] += 1
            if end == "ended early":
                ends[
                    "input at the estimate"
                    if charged[api_key][0] == request.estimate
                    else "input as reported"
                ] += 1
            if problem is not None:
                violations.append(f"{key} ({'stream' if request.stream else 'JSON'}): {problem}")
        violations += sidecar.log_problems()
    await fake.close()
    for name, value in figures.items():
        if value != idle[name]:
            violations.append(f"{name} is {value:g} {SETTLE_S:g} s after the storm, {idle[name]:g} before it")
    if figures["in_flight"] != idle["in_flight"]:
        violations.append("in flight after the storm: " + "; ".join(stuck))
    if fake.unfinished:
        violations.append(f"{fake.unfinished} upstream answers still running after the storm")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    report = [
        f"storm: {clients} clients in {elapsed:.1f} s (sidecar CPU {cpu:.1f} s; "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if " " in k)
        + "); upstream behaviour: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if " " not in k),
        f"  client outcomes: {statuses}",
        f"  upstream answers abandoned by the sidecar {fake.abandoned}; settled in {settled:.1f} s: "
        + ", ".join(f"{k} {idle[k]:g} -> {figures[k]:g}" for k in idle),
        f"  charges of the {len(checked)} requests on keys of their own: finished {ends['finished']} "
        f"(charged their usage), ended early {ends['ended early']} ({ends['input at the estimate']} "
        f"with the input at the estimate, {ends['input as reported']} as the upstream reported it), "
        f"not admitted {ends['not admitted']}",
        f"  violations {len(violations)}",
    ]
    return report, violations
