"""The Prometheus instruments, their bounded labels, and the cached label children.

Every instrument carries the same base labels, each from a bounded set:

``door``       http | grpc | batch (an entry of a batch the sidecar runs)
``operation``  chat (Messages) | count_tokens
``route``      the matching route's ``match`` as written in the config ("" before routing)
``upstream``   the upstream's name from the config; ``provider`` its provider
``model``      the model asked of the upstream: always its own value under an exact route;
               under a glob route the first ``model_label_limit`` distinct names, then ``other``
``stream``     true | false ("" when the request failed before the pipeline saw it)

plus ``outcome`` (success | client_error | server_error | cancelled: the HTTP status class of
the error type), ``error_type`` (an Anthropic error type, ``other`` for unknown ones) and
``type`` (token type) where noted. Nothing identifies a key, a user or a request.

A request's values are gathered per label set in plain Python (``Cell``, ``InFlight``) and added
to the label children (created once per label set and cached) at ``Instruments.flush``, before
every scrape: a request costs a few dict lookups and additions.

Multi-process: with ``PROMETHEUS_MULTIPROC_DIR`` set (before start), values live in that
directory's mmap files (prometheus_client's multiprocess mode), flushed there within a second,
and ``/metrics`` aggregates every process writing there; the in-flight gauge sums live processes. Without it, process and GC
collectors are exported too.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .outcomes import SUCCESS

if TYPE_CHECKING:
    from ..admission.gate import Admission
    from ..admission.pacing import Pacers
    from ..core import Upstream

    AdmissionSource = Callable[[], tuple[Admission | None, Pacers]]

__all__ = [
    "BASE_LABELS",
    "OVERHEAD_BUCKETS",
    "REQUEST_BUCKETS",
    "TOKENS_PER_SECOND_BUCKETS",
    "TOKEN_TYPES",
    "TPOT_BOUNDS",
    "TPOT_BUCKETS",
    "TTFT_BUCKETS",
    "Cell",
    "InFlight",
    "Instruments",
    "LocalHistogram",
]

BASE_LABELS = ("door", "operation", "route", "upstream", "provider", "model", "stream")

# End to end and per upstream attempt: LLM calls take from milliseconds to minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 180, 300)
# gen_ai.server.time_to_first_token's boundaries, extended for long thinking.
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 15, 30, 60,
)  # fmt: skip
# gen_ai.server.time_per_output_token's boundaries, with finer ones below 10 ms for fast models.
TPOT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip
# The sidecar's own time: sub-millisecond is the goal.
OVERHEAD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
TOKENS_PER_SECOND_BUCKETS = (1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2500, 5000, 10000)

TOKEN_TYPES = ("input", "cache_read", "cache_creation", "output", "thinking")
TPOT_BOUNDS = (*TPOT_BUCKETS, float("inf"))  # what a LocalHistogram's counts are indexed by
# Multiprocess mode: how soon values recorded here reach the shared files other processes read.
MULTIPROCESS_FLUSH_SECONDS = 1.0

# `_created` series double the exposition for nothing a dashboard uses.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Instruments:
    """The sidecar's metrics in their own registry (several Telemetry objects can coexist)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        r = self.registry = CollectorRegistry(auto_describe=True)
        base = BASE_LABELS
        self.requests = Counter(
            "sidecar_requests",
            "Requests finished, by outcome (success, client_error, server_error, cancelled) and error type.",
            (*base, "outcome", "error_type"),
            registry=r,
        )
        self.in_flight = Gauge(
            "sidecar_requests_in_flight",
            "Requests being served now.",
            ("door", "operation"),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.request_duration = Histogram(
            "sidecar_request_duration_seconds",
            "End to end: from the request's arrival to its last byte (gen_ai.server.request.duration).",
            (*base, "outcome"),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "sidecar_time_to_first_token_seconds",
            "Streams: from the request's arrival to the first content delta (gen_ai.server.time_to_first_token).",
            base,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "sidecar_time_per_output_token_seconds",
            "Streams: each gap between content deltas after the first; deltas arriving in one read "
            "share the gap since the previous one (gen_ai.server.time_per_output_token).",
            base,
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "sidecar_upstream_duration_seconds",
            "Each upstream attempt: from sending the request to the answer's end "
            "(gen_ai.client.operation.duration).",
            (*base, "outcome"),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "sidecar_overhead_seconds",
            "Time a request spent in the sidecar itself: its duration minus the time spent waiting "
            "for the upstream (requests that reached an upstream).",
            base,
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "sidecar_tokens",
            "Tokens from the upstreams' usage, by type: input (uncached), cache_read, cache_creation, "
            "output, and thinking, which is a part of output (never add it to output).",
            (*base, "type"),
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "sidecar_output_tokens_per_second",
            "Per successful request: output tokens over the request's duration.",
            base,
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "sidecar_upstream_errors",
            "Upstream attempts that failed (not counting cancellations), by error type.",
            (*base, "error_type"),
            registry=r,
        )
        self.ready = Gauge(
            "sidecar_ready",
            "1 while /readyz answers 200 (every listener up, not draining), 0 otherwise; in "
            "multiprocess mode the least of the live processes.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.upstream_retries = Counter(
            "sidecar_upstream_retries",
            "Upstream attempts after a request's first (policy retries and fallbacks), by the target "
            "tried again.",
            base,
            registry=r,
        )
        self.config_reloads = Counter(
            "sidecar_config_reloads",
            "Config reloads (SIGHUP or a changed file), by result: ok, or error (the old config stays).",
            ("result",),
            registry=r,
        )
        if self.multiprocess_dir is None:
            prometheus_client.ProcessCollector(registry=r)
            prometheus_client.PlatformCollector(registry=r)
            prometheus_client.GCCollector(registry=r)
            r.register(_LoopCollector(self))
            if os.environ.get("SIDECAR_TRACEMALLOC") == "1":
                r.register(_TracedMemoryCollector())
        # Each histogram's upper bounds (+Inf last), for the cells' local histograms.
        self.bounds: dict[str, tuple[float, ...]] = {
            name: (*buckets, float("inf"))
            for name, buckets in (
                ("request_duration", REQUEST_BUCKETS),
                ("upstream_duration", REQUEST_BUCKETS),
                ("ttft", TTFT_BUCKETS),
                ("tpot", TPOT_BUCKETS),
                ("overhead", OVERHEAD_BUCKETS),
                ("tokens_per_second", TOKENS_PER_SECOND_BUCKETS),
            )
        }
        self._pending: list[Cell | InFlight] = []
        self.loop_tasks: int | None = None
        self._upstreams: Callable[[], Iterable[Upstream]] | None = None
        self.upstream_connections: list[
            tuple[str, tuple[int, int]]
        ] = []  # the event loop's tasks at the last flush
        self._flush_soon: asyncio.TimerHandle | None = None

    def pending(self, item: Cell | InFlight) -> None:
        """``item`` has values to flush. In multiprocess mode a flush follows within a second,
        so other processes' scrapes see them; otherwise the next scrape flushes."""
        self._pending.append(item)
        if self.multiprocess_dir is not None and self._flush_soon is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop: the next flush (a scrape) takes it
            self._flush_soon = loop.call_later(MULTIPROCESS_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Add every cell's and gauge's gathered values to the instruments. Call it on the thread
        that records them (the event loop's), before rendering."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        pending, self._pending = self._pending, []
        for item in pending:
            item.flush()
        try:
            self.loop_tasks = len(asyncio.all_tasks())
        except RuntimeError:  # not on the event loop's thread
            self.loop_tasks = None
        if self._upstreams is not None:
            # Read on the loop's thread (the pools change there), rendered on another.
            self.upstream_connections = [
                (upstream.name, counts)
                for upstream in self._upstreams()
                if (counts := upstream.connections()) is not None
            ]

    def watch_breakers(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        """``sidecar_breaker_state{route,upstream,state}``: 1 for each target's current state,
        read at scrape time (single-process mode; the state lives in this process)."""
        if self.multiprocess_dir is None:
            self.registry.register(_BreakerCollector(source))

    def watch_upstreams(self, source: Callable[[], Iterable[Upstream]]) -> None:
        """``sidecar_upstream_connections{upstream,state}``: each adapter's busy and idle HTTP
        connections, counted by the flush before each scrape (single-process mode)."""
        if self.multiprocess_dir is None:
            self._upstreams = source
            self.registry.register(_UpstreamCollector(self))

    def watch_admission(self, source: AdmissionSource) -> None:
        """Admission decisions per key, its queue and backend, and upstream pacing, read from
        the running config snapshot at scrape time (single-process mode)."""
        if self.multiprocess_dir is None:
            self.registry.register(_AdmissionCollector(source))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every instrument (of every process, in multiprocess mode)."""
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class LocalHistogram:
    """Observations of one histogram kept locally: bucket counts and their sum, indexed by the
    histogram's upper bounds (+Inf last). ``flush`` adds them to a ``Histogram`` child, the same
    as one ``observe`` per sample, and starts over. A request's time-per-output-token samples
    and each cell's histograms between two scrapes are kept this way: a sample costs a bisect and
    two additions instead of a locked ``observe``."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = TPOT_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0

    def add(self, value: float, n: int = 1) -> None:
        """``n`` samples of ``value`` seconds each."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.total += value * n

    def flush(self, child: Any) -> None:
        """Add the samples to a ``Histogram`` child and forget them.

        prometheus_client keeps a histogram child's non-cumulative bucket counts in ``_buckets``
        (one value per upper bound, +Inf last) and its sum in ``_sum``; both are its value class,
        so this works in multiprocess mode too (tests compare it with ``observe``).
        """
        buckets = child._buckets
        counts = self.counts
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
                counts[i] = 0
        child._sum.inc(self.total)
        self.total = 0.0

    def merge(self, other: LocalHistogram) -> None:
        """Add ``other``'s samples (same bounds) to these."""
        counts = self.counts
        for i, n in enumerate(other.counts):
            if n:
                counts[i] += n
        self.total += other.total


_Flush = Callable[["Cell"], None]
# How many of a counter key's values after its name are labels of its own.
_EXTRA_LABELS = {"requests": 2, "upstream_errors": 1, "upstream_retries": 0}


class Cell:
    """The metrics of one base label set between two flushes.

    A request adds to plain Python counters and local histograms (``LocalHistogram``); the
    first addition after a flush puts the cell on its ``Instruments``' pending list, and
    ``Instruments.flush`` (before every scrape, on the event loop's thread; within a second in
    multiprocess mode) adds everything to the prometheus_client children, created once per label
    set and cached. So the exposition is what one ``inc``/``observe`` per event would have made,
    and a request costs a few dict lookups and additions instead of a dozen locked updates.
    """

    __slots__ = (
        "_children",
        "_ins",
        "_pending",
        "counters",
        "hists",
        "labels",
        "tokens",
    )

    def __init__(self, ins: Instruments, labels: tuple[str, ...]) -> None:
        self._ins = ins
        self.labels = labels
        self._pending = False
        # (instrument name, extra label values) -> count, or -> local histogram
        self.counters: dict[tuple[str, str, str], int] = {}
        self.hists: dict[tuple[str, str], LocalHistogram] = {}
        self.tokens = [0, 0, 0, 0, 0]
        self._children: dict[tuple[str, ...], Any] = {}

    def _touch(self) -> None:
        if not self._pending:
            self._pending = True
            self._ins.pending(self)

    def _count(self, key: tuple[str, str, str], n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def _hist(self, key: tuple[str, str]) -> LocalHistogram:
        hist = self.hists.get(key)
        if hist is None:
            hist = self.hists[key] = LocalHistogram(self._ins.bounds[key[0]])
        return hist

    def _observe(self, key: tuple[str, str], value: float) -> None:
        hist = self._hist(key)
        hist.counts[bisect_left(hist.bounds, value)] += 1
        hist.total += value

    def request(
        self,
        outcome: str,
        error_type: str,
        duration: float,
        overhead: float | None,
        ttft: float | None,
        tpot: LocalHistogram | None,
        tokens: list[int],
    ) -> None:
        """A request's end: its outcome and duration; ``overhead`` and ``ttft`` unless None;
        its time-per-output-token samples; ``tokens`` in ``TOKEN_TYPES`` order; and, for a
        successful request with output tokens, output tokens per second."""
        self._touch()
        self._count(("requests", outcome, error_type))
        self._observe(("request_duration", outcome), duration)
        if overhead is not None:
            self._observe(("overhead", ""), overhead)
        if ttft is not None:
            self._observe(("ttft", ""), ttft)
        if tpot is not None:
            self._hist(("tpot", "")).merge(tpot)
        if tokens[0] or tokens[1] or tokens[2] or tokens[3] or tokens[4]:
            mine = self.tokens
            mine[0] += tokens[0]
            mine[1] += tokens[1]
            mine[2] += tokens[2]
            mine[3] += tokens[3]
            mine[4] += tokens[4]
            if outcome == SUCCESS and tokens[3] > 0 and duration > 0:
                self._observe(("tokens_per_second", ""), tokens[3] / duration)

    def attempt(self, outcome: str, error_type: str, duration: float) -> None:
        self._touch()
        self._observe(("upstream_duration", outcome), duration)
        if error_type:
            self._count(("upstream_errors", error_type, ""))

    def retry(self) -> None:
        """An attempt after the request's first is about to start on this cell's target."""
        self._touch()
        self._count(("upstream_retries", "", ""))

    def flush(self) -> None:
        """Add what was gathered since the last flush to the prometheus_client children."""
        self._pending = False
        ins, labels, children = self._ins, self.labels, self._children
        counters = self.counters
        for key, n in counters.items():
            if n:
                child = children.get(key)
                if child is None:
                    extra: tuple[str, ...] = key[1 : 1 + _EXTRA_LABELS[key[0]]]
                    child = children[key] = getattr(ins, key[0]).labels(*labels, *extra)
                child.inc(n)
                counters[key] = 0
        for hkey, hist in self.hists.items():
            if hist.total or any(hist.counts):
                child = children.get(hkey)
                if child is None:
                    hextra: tuple[str, ...] = (
                        (hkey[1],) if hkey[0] in ("request_duration", "upstream_duration") else ()
                    )
                    child = children[hkey] = getattr(ins, hkey[0]).labels(*labels, *hextra)
                hist.flush(child)
        tokens = self.tokens
        for i, n in enumerate(tokens):
            if n:
                tkey = ("tokens", TOKEN_TYPES[i])
                child = children.get(tkey)
                if child is None:
                    child = children[tkey] = ins.tokens.labels(*labels, TOKEN_TYPES[i])
                child.inc(n)
                tokens[i] = 0


class InFlight:
    """The in-flight gauge of one (door, operation): a local count, added to the gauge at flush."""

    __slots__ = ("_child", "_ins", "_pending", "delta")

    def __init__(self, ins: Instruments, child: Any) -> None:
        self._ins = ins
        self._child = child
        self._pending = False
        self.delta = 0

    def inc(self) -> None:
        self._add(1)

    def dec(self) -> None:
        self._add(-1)

    def _add(self, n: int) -> None:
        self.delta += n
        if not self._pending:
            self._pending = True
            self._ins.pending(self)

    def flush(self) -> None:
        self._pending = False
        if self.delta:
            self._child.inc(self.delta)
            self.delta = 0


class _LoopCollector:
    """``sidecar_event_loop_tasks``: the event loop's tasks, counted by the flush before each
    scrape (on the loop's thread; rendering runs on another). Every request, stream and listener
    holds some; a count that does not come back once traffic stops is a leak."""

    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        tasks = self._instruments.loop_tasks
        if tasks is None:
            return
        family = GaugeMetricFamily("sidecar_event_loop_tasks", "Tasks on the sidecar's event loop now.")
        family.add_metric((), tasks)
        yield family


class _UpstreamCollector:
    """``sidecar_upstream_connections``: the counts the last flush took."""

    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "sidecar_upstream_connections",
            "HTTP connections to each upstream now: busy (a request on it) or idle (kept alive).",
            labels=("upstream", "state"),
        )
        for name, (busy, idle) in self._instruments.upstream_connections:
            family.add_metric((name, "busy"), busy)
            family.add_metric((name, "idle"), idle)
        yield family


class _TracedMemoryCollector:
    """``sidecar_traced_memory_bytes``: Python memory allocated now and not freed, as tracemalloc
    counts it. Only with ``SIDECAR_TRACEMALLOC=1`` (set before start), which starts tracing."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        import tracemalloc

        if not tracemalloc.is_tracing():
            return
        family = GaugeMetricFamily(
            "sidecar_traced_memory_bytes",
            "Python memory allocated and not freed now (tracemalloc; SIDECAR_TRACEMALLOC=1 only).",
        )
        family.add_metric((), tracemalloc.get_traced_memory()[0])
        yield family


class _BreakerCollector:
    """Collects breaker states from the running config snapshot at each scrape."""

    _STATES = ("closed", "open", "half_open")

    def __init__(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        self._source = source

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "sidecar_breaker_state",
            "Circuit breaker state per route and upstream target (1 for the current state).",
            labels=("route", "upstream", "state"),
        )
        for route, upstream, state in self._source():
            for candidate in self._STATES:
                family.add_metric((route, upstream, candidate), 1.0 if candidate == state else 0.0)
        yield family


class _AdmissionCollector:
    """Collects admission counters (they carry over config reloads) and upstream pacing."""

    def __init__(self, source: AdmissionSource) -> None:
        self._source = source

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        admission, pacers = self._source()
        paced = CounterMetricFamily(
            "sidecar_upstream_paced",
            "Upstream attempts held back because the upstream's rate-limit headers said its budget "
            "was nearly spent (waited), or refused with 429 because the wait was too long (refused).",
            labels=("upstream", "outcome"),
        )
        paced_seconds = CounterMetricFamily(
            "sidecar_upstream_paced_seconds",
            "Seconds upstream attempts were held back by pacing.",
            labels=("upstream",),
        )
        for upstream, stats in sorted(pacers.stats.items()):
            paced.add_metric((upstream, "waited"), stats.waited)
            paced.add_metric((upstream, "refused"), stats.refused)
            paced_seconds.add_metric((upstream,), stats.wait_seconds)
        yield paced
        yield paced_seconds
        if admission is None:
            return
        decisions = CounterMetricFamily(
            "sidecar_admission_decisions",
            "Admission decisions per client key name (never the key): admitted, waited (admitted after "
            "queueing), degraded (admitted unchecked, backend down), refused, shadow_refused; reason: "
            "authentication, permission, requests, tokens, input_tokens, output_tokens, concurrency, "
            "unavailable.",
            labels=("key", "outcome", "reason"),
        )
        for (outcome, key, reason), count in sorted(admission.stats.by_key.items()):
            decisions.add_metric((key, outcome, reason), count)
        yield decisions
        queue_seconds = CounterMetricFamily(
            "sidecar_admission_queue_wait_seconds",
            "Seconds admitted requests waited in the per-key queue.",
        )
        queue_seconds.add_metric((), admission.stats.wait_seconds)
        yield queue_seconds
        waiting = GaugeMetricFamily(
            "sidecar_admission_waiting", "Requests waiting in the per-key queue now.", labels=("key",)
        )
        for key, count in sorted(admission.limiter.waiting_by_key().items()):
            waiting.add_metric((key,), count)
        yield waiting
        leases = GaugeMetricFamily(
            "sidecar_admission_leases",
            "Admitted requests of this process not released yet (their concurrency leases), per key.",
            labels=("key",),
        )
        for key, count in sorted(admission.limiter.held_by_key().items()):
            leases.add_metric((key,), count)
        yield leases
        kind = admission.backend_kind
        up = GaugeMetricFamily(
            "sidecar_admission_backend_up",
            "1 while the limits backend answers (always 1 in memory), 0 while it does not.",
            labels=("backend",),
        )
        up.add_metric((kind,), 0.0 if admission.backend_unavailable else 1.0)
        yield up
        errors = CounterMetricFamily(
            "sidecar_admission_backend_errors",
            "Limits backend calls that failed or timed out (fail_open decides what happened then).",
            labels=("backend",),
        )
        errors.add_metric((kind,), admission.backend_errors)
        yield errors
