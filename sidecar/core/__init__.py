"""The door-independent core: what a request is (Call) and what comes back (Answer)."""

from __future__ import annotations

from .answer import Answer, EventStream, StreamEvent, encode_sse
from .call import Call, new_request_id

__all__ = ["Answer", "Call", "EventStream", "StreamEvent", "encode_sse", "new_request_id"]
