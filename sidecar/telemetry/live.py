"""The live telemetry: per-request and per-attempt observers feeding metrics and spans.

Costs on the hot path, per request: a perf_counter at arrival and at the end, a few per upstream
read of a stream (one when it carries content deltas, two around each wait), the decoding of
``message_start``, ``message_delta`` and ``error`` events only (other events are looked at by
name), and, at the end, one increment or observation per instrument on label children cached per
label set. Time-per-token samples are bucketed locally and added once. Spans, when tracing is on,
are two per request (SERVER, CLIENT per attempt).

Telemetry never fails a request: an unexpected error in here is logged and the request goes on.

The pieces: ``registry`` (what is kept for the whole process), ``request`` (the per-request
observer), ``attempt`` (the per-attempt observer: its span, the stream it watches), ``outcomes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ..config import Config
from ..core import RequestObserver
from .hook import Telemetry
from .registry import Registry
from .request import LiveRequest

if TYPE_CHECKING:
    from ..admission.gate import Admission
    from ..admission.pacing import Pacers
    from ..core import Upstream

__all__ = ["LiveTelemetry"]

log = logging.getLogger("sidecar.telemetry")

SHUTDOWN_TIMEOUT = 5.0  # seconds the span queue may take to flush at stop


class LiveTelemetry(Registry, Telemetry):
    """Metrics (prometheus_client) and/or traces (OpenTelemetry), per ``config.telemetry``."""

    def __init__(self, config: Config, traces_endpoint: str | None, env: Mapping[str, str]) -> None:
        super().__init__(config, traces_endpoint, env)
        self.metrics_enabled = self.ins is not None
        self.tracing_enabled = self.tracing is not None

    def begin(self, door: str, method: str, headers: Mapping[str, str]) -> RequestObserver:
        return LiveRequest(self, door, method, headers)

    def flush_metrics(self) -> None:
        if self.ins is not None:
            self.ins.flush()

    def render_metrics(self) -> tuple[bytes, str] | None:
        return None if self.ins is None else self.ins.render()

    def config_reload(self, result: str) -> None:
        if self.ins is not None:
            self.ins.config_reloads.labels(result).inc()

    def set_ready(self, ready: bool) -> None:
        if self.ins is not None:
            self.ins.ready.set(1.0 if ready else 0.0)

    def watch_breakers(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        if self.ins is not None:
            self.ins.watch_breakers(source)

    def watch_admission(self, source: Callable[[], tuple[Admission | None, Pacers]]) -> None:
        if self.ins is not None:
            self.ins.watch_admission(source)

    def watch_upstreams(self, source: Callable[[], Iterable[Upstream]]) -> None:
        if self.ins is not None:
            self.ins.watch_upstreams(source)

    async def aclose(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Flush queued spans, waiting at most ``timeout`` seconds: an unreachable collector
        must not hold the process up (the flush goes on in a daemon thread, lost at exit)."""
        if self.tracing is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def shutdown() -> None:
            try:
                assert self.tracing is not None
                self.tracing.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(finished)

        threading.Thread(target=shutdown, name="sidecar-trace-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            log.warning("spans not exported within %.0f s of shutdown were dropped", timeout)
