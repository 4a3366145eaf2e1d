"""The storm's per-request charge check: what admission charged each request, judged against what
its upstream wrote and its client received.

A checked request has a client key of its own, limited in input and output tokens per a "minute"
so long (``PERIOD``) that no token refills during a campaign: the key's buckets hold exactly
that request's charge. After the storm the charge is read back from the sidecar's own rate-limit
headers: a probe request per key reports ``anthropic-ratelimit-{input,output}-tokens-remaining``
at its admission, and the same probe on a key nothing used gives the probe's own input charge.

What a request must have been charged, (input, output) tokens (``judge``):

- **finished** (the sidecar saw the answer's end, and with it the usage): exactly the upstream's
  usage. A client that got the whole answer must see this.
- **ended early** (the client left, the call failed): input is the upstream's count once the
  sidecar relayed ``message_start`` (it carries that count; the client then received it, or may
  have), else the admission estimate; output is 0 for a JSON call, and for a stream at least what
  the client received and at most what the upstream wrote (each counted as the sidecar counts a
  stream: the larger of the usage its events report and the local estimate of their text, at
  most ``max_tokens``).
- **not admitted** (the client left before admission): nothing, and no answer.

A second charge (the estimate twice, output above what the upstream wrote) or a charge left out
(a finished answer at the estimate) breaks these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sidecar.core.estimate import TextCounter

from .fault_upstream import MODEL

__all__ = ["LIMIT", "PERIOD", "Request", "judge", "output_charge", "read_charges"]

PERIOD = 1e9  # seconds in the checked keys' "minute": a token refills every PERIOD / LIMIT s
LIMIT = 1_000_000  # tokens per PERIOD, input and output each: one refills every 1,000 s


@dataclass(slots=True)
class Request:
    """One checked request: what the sidecar should have estimated, what the upstream reports
    for it, and what each side saw (stream events; a JSON answer as its message)."""

    stream: bool
    estimate: int  # the admission estimate of its input
    usage: tuple[int, int]  # the upstream's (input, output) for the whole answer
    max_tokens: int
    written: list[dict[str, Any]] = field(default_factory=list)  # by the upstream, all attempts
    received: list[dict[str, Any]] = field(default_factory=list)  # by the client
    complete: bool = False  # the client got the whole answer


def output_charge(events: Iterable[dict[str, Any]], max_tokens: int) -> int:
    """Output tokens the sidecar charges for a stream once ``events`` passed (see
    ``sidecar.pipeline.charge``): the larger of the reported count and the text's estimate,
    capped at ``max_tokens`` (never below the reported count)."""
    reported = 0
    counter = TextCounter()
    for event in events:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
            if isinstance(text, str):
                counter.add(text)
        elif kind in ("message_start", "message_delta"):
            usage = (
                (event.get("message") or {}).get("usage") if kind == "message_start" else event.get("usage")
            )
            out = (usage or {}).get("output_tokens")
            if isinstance(out, int) and out > reported:
                reported = out
    return min(max(reported, counter.tokens()), max(max_tokens, reported))


def _ended(events: list[dict[str, Any]], stream: bool) -> bool:
    if stream:
        return any(e.get("type") == "message_stop" for e in events)
    return any(e.get("type") == "message" for e in events)


def judge(request: Request, charged: tuple[int, int]) -> tuple[str, str | None]:
    """(how the request ended: finished, ended early or not admitted; a violation or None)."""
    r = request
    if r.complete or (charged == r.usage and _ended(r.written, r.stream)):
        if charged == r.usage:
            return "finished", None
        return "finished", f"got the whole answer but was charged {charged}, not its usage {r.usage}"
    if charged == (0, 0):
        if r.received:
            return "not admitted", "was charged nothing but got an answer"
        return "not admitted", None
    inputs = {r.estimate}
    if r.stream and any(e.get("type") == "message_start" for e in r.received):
        inputs = {r.usage[0]}
    elif r.stream and any(e.get("type") == "message_start" for e in r.written):
        inputs = {r.estimate, r.usage[0]}
    low = output_charge(r.received, r.max_tokens) if r.stream else 0
    high = output_charge(r.written, r.max_tokens) if r.stream else 0
    problems = []
    if charged[0] not in inputs:
        want = " or ".join(str(n) for n in sorted(inputs))
        problems.append(f"input {charged[0]}, not {want} (estimate {r.estimate}, upstream {r.usage[0]})")
    if not low <= charged[1] <= high:
        problems.append(
            f"output {charged[1]}, not between {low} (what the client received) and {high} (what the "
            "upstream wrote)"
        )
    return "ended early", "; ".join(problems) or None


async def read_charges(url: str, keys: list[str], fresh: str) -> dict[str, tuple[int, int]]:
    """Each key's charge (input, output), from a probe's rate-limit headers; ``fresh``: a key
    nothing used, whose probe gives the probe's own input charge."""
    body = {
        "model": MODEL,
        "max_tokens": 8,
        "metadata": {"user_id": "charge-probe"},
        "messages": [{"role": "user", "content": "probe"}],
    }

    async def remaining(client: httpx.AsyncClient, key: str) -> tuple[int, int]:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        r = await client.post("/v1/messages", json=body, headers=headers)
        r.raise_for_status()
        name = "anthropic-ratelimit-{}-tokens-remaining"
        return int(r.headers[name.format("input")]), int(r.headers[name.format("output")])

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        probe_in, _ = await remaining(client, fresh)
        charges = {}
        for key in keys:
            left_in, left_out = await remaining(client, key)
            charges[key] = (probe_in - left_in, LIMIT - left_out)
    return charges
