"""Admission's charge for a streamed answer: output tokens charged as they pass, reconciled with
the final usage, and the key's ticket freed however the stream ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..core import EventStream, StreamEvent, event_usage
from ..core.estimate import TextCounter

if TYPE_CHECKING:
    from ..admission.gate import Ticket

__all__ = ["charged_stream"]

# The usage members that count as input (``usage_from``); the output of a stream that ends early
# is what was charged as it passed.
_INPUT_USAGE = ("input_tokens", "cache_creation_input_tokens")


def charged_stream(events: EventStream, ticket: Ticket, max_tokens: Any = None) -> EventStream:
    """Charge output tokens as they stream, reconcile at the end, and free the ticket however the
    stream ends.

    The API reports output usage only in ``message_start`` (1) and the last ``message_delta``,
    so while a key's output is limited the deltas' text (text, thinking, tool input JSON) is
    counted with the local estimator and charged as it passes (at most ``max_tokens``); the
    upstream's count replaces the estimate when it comes. A client that leaves early is charged
    the output it was sent, and the input the upstream reported in ``message_start`` (the work
    was done) rather than the admission estimate.
    """
    counting = ticket.counts_output
    cap = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None

    async def batches() -> AsyncIterator[list[StreamEvent]]:
        charged = 0  # output tokens charged so far
        reported = 0  # the upstream's latest output count
        counter = TextCounter()
        usage: dict[str, Any] | None = None
        try:
            async for batch in events.batches():
                for event in batch:
                    name = event.name
                    if counting and name == "content_block_delta":
                        delta = event.data.get("delta")
                        if isinstance(delta, dict):
                            text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
                            if isinstance(text, str):
                                counter.add(text)
                    elif name == "message_delta" or name == "message_start":
                        found = event_usage(event)
                        if found is not None:
                            usage = {**(usage or {}), **found}
                            out = found.get("output_tokens")
                            if isinstance(out, int) and out > reported:
                                reported = out
                if counting:
                    # The estimate, or the upstream's count once it says more; ``finish``
                    # reconciles either to the final usage.
                    used = max(reported, counter.tokens())
                    if cap is not None:
                        used = min(used, max(cap, reported))
                    if used > charged:
                        await ticket.charge_output(used - charged)
                        charged = used
                elif reported > charged:
                    await ticket.charge_output(reported - charged)
                    charged = reported
                yield batch
            await ticket.finish(usage)
        finally:
            if usage is not None:
                # Ended early (a no-op after the finish above): the input as the upstream counted
                # it, the output as charged so far. Found by the storm's per-request charge check.
                await ticket.finish({k: v for k, v in usage.items() if k in _INPUT_USAGE})
            await ticket.release()

    async def close() -> None:
        # A stream closed before it was iterated (the client left between the answer's start
        # and its first event) never runs the generator's ``finally``: release here too.
        try:
            await events.aclose()
        finally:
            await ticket.release()

    return EventStream(batches(), close)
