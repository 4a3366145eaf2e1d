"""The cancellation storm: clients that leave at random points, over both doors.

Each client sends one request and then disconnects (HTTP: its connection is dropped), cancels
(gRPC: ``call.cancel()``) or lets its gRPC deadline pass, after a random delay that lands it in
one of the places a request can be: queued by admission (4 keys, 8 requests in flight each),
waiting for an upstream that has not answered, held before the first delta (the route holds a
stream until then), in a retry's backoff (the first attempt answers 529), or mid-stream (a
trickling answer). Some clients stay to the end.

Afterwards, once the sidecar has settled: no request in flight, no admission lease held and
no request queued (``sidecar_requests_in_flight``, ``sidecar_admission_leases``,
``sidecar_admission_waiting``), no upstream answer left running (every cancelled one was seen
closed by the fake upstream), the event loop's task count (``sidecar_event_loop_tasks``) back to
its value before the storm, no upstream connection busy (``sidecar_upstream_connections``), and
no traceback or key in the sidecar's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import time
from collections import Counter
from typing import Any

import httpx
from grpc import aio as grpc_aio

from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from .fault_upstream import HOLD, MODEL, FaultUpstream
from .sidecar_process import SidecarProcess

KEYS = [f"sk-client-storm-{i}" for i in range(4)]
CONCURRENCY_PER_KEY = 8
SETTLE_S = 10.0  # how long the sidecar may take to come back to idle after the last client
# What the fake does with each request's first attempt (later attempts answer normally).
KINDS = {"stall": "stall", "hold": HOLD, "retry": "529", "trickle": "trickle", "normal": None}


def config(url: str, admin_port: int, http_port: int, grpc_port: int) -> str:
    keys = "\n".join(
        f"    - {{name: storm-{i}, sha256: {hashlib.sha256(k.encode()).hexdigest()}, tier: t}}"
        for i, k in enumerate(KEYS)
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
  tiers:
    t: {{concurrency: {CONCURRENCY_PER_KEY}}}
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


async def _http_client(url: str, api_key: str, body: dict[str, Any], leave_after: float | None) -> str:
    """One client on its own connection; dropped after ``leave_after`` s (None: read it all)."""
    async with httpx.AsyncClient(base_url=url, timeout=30, verify=_TLS) as client:
        headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}

        async def whole() -> str:
            async with client.stream("POST", "/v1/messages", json=body, headers=headers) as r:
                await r.aread()
                return f"http {r.status_code}"

        if leave_after is None:
            return await whole()
        try:
            return await asyncio.wait_for(whole(), leave_after)
        except TimeoutError:
            return "http left"


async def _grpc_client(
    stub: Any, api_key: str, body: dict[str, Any], leave_after: float | None, how: str
) -> str:
    metadata = (("x-api-key", api_key),)
    request = convert.request_to_proto(body)
    timeout = leave_after if how == "deadline" and leave_after is not None else 30.0
    call = (stub.StreamMessage if body["stream"] else stub.CreateMessage)(
        request, metadata=metadata, timeout=timeout
    )

    async def whole() -> str:
        if body["stream"]:
            async for _ in call:
                pass
        else:
            await call
        return "grpc OK"

    try:
        if leave_after is None or how == "deadline":
            return await whole()
        try:
            return await asyncio.wait_for(whole(), leave_after)
        except TimeoutError:
            call.cancel()
            return "grpc cancelled"
    except grpc_aio.AioRpcError as exc:
        return f"grpc {exc.code().name}"


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
    async with SidecarProcess(lambda a, h, g: config(url, a, h, g)) as sidecar:
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
            began = time.monotonic()
            try:
                if door == "http":
                    outcome = await _http_client(sidecar.http_url, api_key, _body(key, stream), leave_after)
                else:
                    outcome = await _grpc_client(stub, api_key, _body(key, stream), leave_after, how)
            except Exception as exc:  # a client-side failure is a finding too
                outcome = f"client error {type(exc).__name__}"
                violations.append(f"{key}: {type(exc).__name__}: {exc}")
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
        f"  violations {len(violations)}",
    ]
    return report, violations
