"""The fault campaign: requests over both doors, JSON and streaming, through a route with two
upstreams whose fake fails a share of the attempts in every way (``fault_upstream.FAULTS``).

Each answer is compared with the fault-free answer for the same request (the fake is
deterministic): equal after normalising ids, or, for a stream that failed after its first
content delta (nothing can be retried then), exactly a prefix of it followed by one ``error``
event (over gRPC: a prefix, then an error event or an error status). A request whose every
allowed attempt failed gets an error answer, which is counted (``exhausted``), and must not
have used more attempts than the retry budget allows. Afterwards no upstream answer may be left
unfinished (a stalled attempt must have been abandoned), and the breaker must have opened and
closed again at least once in the full run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from grpc import aio as grpc_aio

from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from .fault_upstream import MODEL, FaultUpstream, expected_events, expected_message, input_tokens_of
from .sidecar_process import SidecarProcess

MAX_ATTEMPTS = 3  # the route's retry.max_attempts
MAX_RETRIES = 2  # its budget.max_retries_per_request: at most 3 attempts per request
FIRST_BYTE_S = 1.0  # the route's timeouts.first_byte: how long a stalled attempt is waited for


def route_config(url: str, admin_port: int, http_port: int, grpc_port: int) -> str:
    return f"""
listeners: {{http: {{port: {http_port}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
telemetry: {{request_log: true}}
upstreams:
  a: {{provider: anthropic, base_url: "{url}/a", api_key: sk-fault-a, pacing: {{enabled: false}}}}
  b: {{provider: anthropic, base_url: "{url}/b", api_key: sk-fault-b, pacing: {{enabled: false}}}}
routes:
  - match: "*"
    policy:
      groups: [{{targets: [{{upstream: a}}]}}, {{targets: [{{upstream: b}}]}}]
      fallback_on: [429, 500, 502, 503, 504, 529]
      retry: {{max_attempts: {MAX_ATTEMPTS}, base_backoff: 0.005, max_backoff: 0.02}}
      budget: {{max_retries_per_request: {MAX_RETRIES}, ratio: 1.0, min_retries: 100000}}
      timeouts: {{first_byte: {FIRST_BYTE_S}, idle: 2.0}}
      breaker: {{consecutive_failures: 5, failure_rate: 0.9, min_calls: 1000, cooldown: 0.3}}
"""


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)  # per door/mode
    equal: int = 0
    prefix_error: int = 0
    exhausted: int = 0
    exhausted_by: Counter[str] = field(default_factory=Counter)
    exhausted_keys: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def bad(self, key: str, what: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(f"{key}: {what}")
        else:
            self.violations.append("...")


_ID = re.compile(r"^(msg|req)_")


def _normalise(value: Any) -> Any:
    """Ids differ between attempts and doors: drop them."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if k not in ("id", "request_id")}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _body(key: str, rng: random.Random, stream: bool) -> dict[str, Any]:
    size = rng.choice((20, 200, 2_000, 20_000, 80_000))
    return {
        "model": MODEL,
        "max_tokens": 64,
        "stream": stream,
        "metadata": {"user_id": key},
        "messages": [{"role": "user", "content": f"request {key}: " + "x" * size}],
    }


def _judge_stream(tally: Tally, key: str, got: list[dict[str, Any]], ended_by_status: bool) -> None:
    """``got``: the events received, pings dropped."""
    expected = _normalise(expected_events(key, input_tokens_of(_BODIES[key])))
    events = _normalise(got)
    if events == expected and not ended_by_status:
        tally.equal += 1
        return
    head = events[:-1] if events and events[-1].get("type") == "error" else events
    ended_with_error = ended_by_status or (bool(events) and events[-1].get("type") == "error")
    deltas = sum(1 for e in head if e.get("type") == "content_block_delta")
    if ended_with_error and deltas and head == expected[: len(head)]:
        tally.prefix_error += 1
        return
    if ended_with_error and not head:
        tally.exhausted += 1
        tally.exhausted_keys.append(key)
        tally.exhausted_by["stream: an error before any event"] += (
            1  # every attempt failed before the first delta
        )
        return
    tally.bad(
        key,
        f"stream differs: got {len(events)} events, {deltas} deltas; first difference at "
        f"{next((i for i, (a, b) in enumerate(zip(events, expected, strict=False)) if a != b), min(len(events), len(expected)))}",
    )


def _judge_json(tally: Tally, key: str, status: int, data: Any) -> None:
    if status == 200:
        expected = _normalise(expected_message(key, input_tokens_of(_BODIES[key])))
        if _normalise(data) == expected:
            tally.equal += 1
        else:
            tally.bad(key, f"JSON answer differs: {json.dumps(data)[:200]}")
        return
    if isinstance(data, dict) and data.get("type") == "error" and status in (429, 500, 502, 503, 504, 529):
        tally.exhausted += 1
        tally.exhausted_keys.append(key)
        tally.exhausted_by[
            f"HTTP {status} {data['error'].get('type')}: {str(data['error'].get('message'))[:60]}"
        ] += 1
        return
    tally.bad(key, f"HTTP {status} without an error envelope: {str(data)[:200]}")


_BODIES: dict[str, dict[str, Any]] = {}


async def _http_one(client: httpx.AsyncClient, tally: Tally, key: str, body: dict[str, Any]) -> None:
    headers = {"x-api-key": "sk-client", "anthropic-version": "2023-06-01"}
    if not body["stream"]:
        r = await client.post("/v1/messages", json=body, headers=headers)
        try:
            data = r.json()
        except ValueError:
            data = r.text
        _judge_json(tally, key, r.status_code, data)
        return
    async with client.stream("POST", "/v1/messages", json=body, headers=headers) as r:
        raw = await r.aread()
    if r.status_code != 200:
        _judge_json(tally, key, r.status_code, json.loads(raw))
        return
    events = []
    for block in raw.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event.get("type") != "ping":
                    events.append(event)
    _judge_stream(tally, key, events, ended_by_status=False)


async def _grpc_one(stub: Any, tally: Tally, key: str, body: dict[str, Any]) -> None:
    metadata = (("x-api-key", "sk-client"),)
    request = convert.request_to_proto(body)
    if not body["stream"]:
        try:
            message = await stub.CreateMessage(request, metadata=metadata, timeout=30)
        except grpc_aio.AioRpcError as exc:
            tally.exhausted_keys.append(key)
            tally.exhausted_by[f"gRPC {exc.code().name}: {(exc.details() or '')[:60]}"] += 1
            if exc.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                tally.exhausted += 1
            else:
                tally.bad(key, f"gRPC {exc.code().name}: {exc.details()}")
            return
        _judge_json(tally, key, 200, convert.message_from_proto(message))
        return
    events: list[dict[str, Any]] = []
    by_status = False
    try:
        async for pe in stub.StreamMessage(request, metadata=metadata, timeout=30):
            event = convert.event_from_proto(pe)
            if event.get("type") != "ping":
                events.append(event)
    except grpc_aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not events:
            # The sidecar's own timeout_error (every attempt it could make timed out: a stall
            # past the first-byte timeout with no retry left, as HTTP answers 504) carries its
            # error type; the client's 30 s deadline passing does not.
            trailers: tuple[Any, ...] = tuple(exc.trailing_metadata() or ())
            if ("anthropic-error-type", "timeout_error") in trailers:
                tally.exhausted += 1
                tally.exhausted_keys.append(key)
                tally.exhausted_by[f"gRPC DEADLINE_EXCEEDED timeout_error: {(exc.details() or '')[:60]}"] += 1
                return
            tally.bad(key, "gRPC stream hit its 30 s deadline")
            return
        by_status = True
    _judge_stream(tally, key, events, ended_by_status=by_status)


async def _breaker_watch(admin: str, seen: Counter[str], stop: asyncio.Event) -> None:
    """Poll /metrics: count the breaker's transitions into open and back to closed."""
    last: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=admin, timeout=5) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                text = (await client.get("/metrics")).text
                for line in text.splitlines():
                    if line.startswith("sidecar_breaker_state{") and line.endswith(" 1.0"):
                        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                        target = labels.get("upstream", "")
                        state = labels.get("state", "")
                        if last.get(target) != state:
                            if target in last:
                                seen[f"{target}: {last[target]} -> {state}"] += 1
                            last[target] = state
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


async def run(
    requests: int, concurrency: int = 16, seed: int = 7, full: bool = False
) -> tuple[list[str], list[str]]:
    """Returns (report lines, violations)."""
    rng = random.Random(seed)
    # An outage of upstream a over 3 % of the attempts, a third of the way in: its breaker must
    # open (traffic falls back to b) and close again once a answers again.
    outage = (requests * 33 // 100, requests * 36 // 100) if full else None
    fake = FaultUpstream(seed=seed, stall_s=FIRST_BYTE_S * 5, outage=outage)
    url = await fake.start()
    tally = Tally()
    transitions: Counter[str] = Counter()
    async with SidecarProcess(lambda a, h, g: route_config(url, a, h, g)) as sidecar:
        stop = asyncio.Event()
        watcher = asyncio.create_task(_breaker_watch(sidecar.admin_url, transitions, stop))
        queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
        for i in range(requests):
            door = rng.choice(("http", "grpc"))
            stream = rng.random() < 0.5
            key = f"f{seed}-{i}"
            body = _body(key, rng, stream)
            _BODIES[key] = body
            tally.sent[f"{door} {'stream' if stream else 'json'}"] += 1
            queue.put_nowait((door, key, body))
        channel = grpc_aio.insecure_channel(sidecar.grpc_target)
        stub = pb_grpc.MessagesStub(channel)
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=sidecar.http_url, timeout=30) as client:

            async def worker() -> None:
                while not queue.empty():
                    door, key, body = queue.get_nowait()
                    try:
                        if door == "http":
                            await _http_one(client, tally, key, body)
                        else:
                            await _grpc_one(stub, tally, key, body)
                    except Exception as exc:  # a client-side failure is a finding too
                        tally.bad(key, f"{door}: {type(exc).__name__}: {exc}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await channel.close(None)
        # Stalled attempts were abandoned by the sidecar's timeout: nothing may still be open.
        for _ in range(100):
            if fake.unfinished == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await watcher
        log_problems = sidecar.log_problems()
    await fake.close()
    violations = [
        f"{v} (attempts: {', '.join(fake.history.get(v.split(':')[0], []))})" for v in tally.violations
    ]
    internal = sum(n for k, n in tally.exhausted_by.items() if k.endswith("Internal server error"))
    if internal:
        # The sidecar's own 500: an upstream fault it did not map (never allowed).
        violations.append(f"{internal} answers were the sidecar's own 'Internal server error'")
    if fake.unfinished:
        violations.append(f"{fake.unfinished} upstream answers still unfinished after the campaign")
    over = {k: n for k, n in fake.attempts.items() if n > 1 + MAX_RETRIES}
    if over:
        violations.append(f"requests over the retry budget: {dict(list(over.items())[:5])}")
    violations += log_problems
    opened = sum(n for t, n in transitions.items() if t.endswith("-> open"))
    closed = sum(n for t, n in transitions.items() if t.endswith("-> closed"))
    if full and not (opened and closed):
        violations.append("the breaker never opened and closed again")
    attempts = sum(fake.attempts.values())
    report = [
        f"faults: {requests} requests ({', '.join(f'{k} {v}' for k, v in sorted(tally.sent.items()))}) "
        f"in {elapsed:.1f} s, c={concurrency}",
        f"  upstream attempts {attempts} ({attempts / max(requests, 1):.2f} per request, at most "
        f"{max(fake.attempts.values(), default=0)}), faults injected {sum(fake.faults.values())}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(fake.faults.items())),
        f"  answers equal to the fault-free one {tally.equal}, stream prefix + error {tally.prefix_error}, "
        f"every attempt failed (error answer) {tally.exhausted}, after attempts: "
        + ", ".join(
            f"{n}: {c}" for n, c in sorted(Counter(fake.attempts[k] for k in tally.exhausted_keys).items())
        ),
        f"  breaker: opened {opened}, closed {closed}; upstream attempts by upstream: "
        + ", ".join(f"{k} {v}" for k, v in sorted(fake.by_path.items())),
        "  error answers: " + "; ".join(f"{k} x{v}" for k, v in tally.exhausted_by.most_common(8)),
        f"  violations {len(violations)}",
    ]
    return report, violations
