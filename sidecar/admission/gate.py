"""``Admission``: the one object the pipeline calls before a request goes upstream.

Per request, on either door::

    ticket = await admission.admit(call.headers, model, estimate_input_tokens(body))
    # raises AuthenticationFailed (401), PermissionDenied (403) or RateLimited (429, with
    # retry-after and the anthropic-ratelimit-* headers in .headers)
    try:
        response_headers += ticket.headers()          # on every response while admission is on
        ... for each streamed delta: await ticket.charge_output(n)
        await ticket.finish(usage)                    # the answer's usage dict: reconciles, frees
    finally:
        await ticket.release()                        # idempotent; errors and cancellations

``model`` is the name the client asked for, after aliases (what ``models`` globs match).
In ``shadow`` mode nothing is refused and no header is added: would-be refusals are counted in
``stats.shadow_refused`` by reason, so limits can be tried on live traffic first. Auth failures
are counted, never logged (a log line could carry what a client mistyped as a key).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import msgspec

from ..config.admission import AdmissionConfig
from ..core.clock import Clock
from ..errors import AuthenticationFailed, PermissionDenied, RateLimited, SidecarError
from .headers import grant_headers, refusal_headers
from .keys import KeyRecord, KeyStore
from .limiter import Grant, Limiter, RedisLimiter, Refusal, Usage, build_limiter

__all__ = ["Admission", "AdmissionStats", "Ticket", "refusal_error", "usage_from"]

log = logging.getLogger("sidecar.admission")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(slots=True)
class AdmissionStats:
    """Counters for metrics. Reasons: ``authentication``, ``permission``, a rate dimension
    (``requests``, ``input_tokens``, ``output_tokens``, ``tokens``), ``concurrency``,
    ``unavailable`` (backend down, fail-closed)."""

    # (outcome, key name or "", reason or "") -> count; outcome: admitted, waited (admitted after
    # a wait), degraded (admitted unchecked: the backend was down, fail-open), refused,
    # shadow_refused. Key names come from the config (bounded). The totals below derive from it.
    by_key: dict[tuple[str, str, str], int] = field(default_factory=dict)
    wait_seconds: float = 0.0  # total time admitted requests spent in the queue

    def count(self, reason: str, *, shadow: bool, key: str = "") -> None:
        self.bump("shadow_refused" if shadow else "refused", key, reason)

    def bump(self, outcome: str, key: str, reason: str = "") -> None:
        index = (outcome, key, reason)
        self.by_key[index] = self.by_key.get(index, 0) + 1

    def total(self, outcome: str) -> int:
        return sum(n for (kind, _, _), n in self.by_key.items() if kind == outcome)

    def reasons(self, outcome: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for (kind, _, reason), n in self.by_key.items():
            if kind == outcome:
                out[reason] = out.get(reason, 0) + n
        return out

    @property
    def admitted(self) -> int:
        return self.total("admitted")

    @property
    def waited(self) -> int:
        return self.total("waited")

    @property
    def degraded(self) -> int:
        return self.total("degraded")

    @property
    def refused(self) -> dict[str, int]:
        return self.reasons("refused")

    @property
    def shadow_refused(self) -> dict[str, int]:
        return self.reasons("shadow_refused")


def usage_from(usage: Mapping[str, Any] | Usage | None, *, input_default: int, output_default: int) -> Usage:
    """A ``Usage`` from the API's usage object: input = ``input_tokens`` +
    ``cache_creation_input_tokens`` (cache reads are free); a missing count keeps the default."""
    if isinstance(usage, Usage):
        return usage
    if usage is None:
        return Usage(input_default, output_default)

    def _int(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    inputs = _int("input_tokens")
    created = _int("cache_creation_input_tokens") or 0
    outputs = _int("output_tokens")
    return Usage(
        input_tokens=input_default if inputs is None else inputs + created,
        output_tokens=output_default if outputs is None else outputs,
    )


class Ticket:
    """One admitted request: its headers, its streamed charges and its end.

    ``key_name`` is None only in shadow mode when the credential was refused. Every method is
    safe to call after ``release`` (it does nothing then); none raises on a backend failure.
    """

    def __init__(
        self,
        *,
        record: KeyRecord | None,
        grant: Grant | None,
        limiter: Limiter,
        shadow: bool,
    ) -> None:
        self.record = record
        self.grant = grant
        self.shadow = shadow
        self._limiter = limiter
        self._pending = 0

    @property
    def key_name(self) -> str | None:
        """The key's configured name (for logs and metrics), never the key."""
        return self.record.name if self.record else None

    @property
    def tier(self) -> str | None:
        return self.record.tier if self.record else None

    @property
    def counts_output(self) -> bool:
        """True when streamed output is charged to a limit (output or combined tokens)."""
        grant = self.grant
        return (
            grant is not None
            and not grant.degraded
            and (
                grant.limits.output_tokens_per_minute is not None
                or grant.limits.tokens_per_minute is not None
            )
        )

    def headers(self) -> list[tuple[str, str]]:
        """The ``anthropic-ratelimit-*`` headers for this response (none in shadow mode)."""
        if self.shadow or self.grant is None:
            return []
        return grant_headers(self.grant)

    async def charge_output(self, tokens: int) -> None:
        """Charge ``tokens`` more streamed output tokens; sent to the limiter in batches of its
        ``charge_batch`` (the rest goes with ``finish`` / ``release``)."""
        if self.grant is None or self.grant.released or tokens <= 0:
            return
        self._pending += tokens
        if self._pending >= self._limiter.charge_batch:
            pending, self._pending = self._pending, 0
            await self._limiter.charge(self.grant, pending)

    async def finish(self, usage: Mapping[str, Any] | Usage | None) -> None:
        """End the request with the upstream's real usage (the answer's ``usage`` object, or
        None when unknown): reconcile the input estimate and the output charged, free the slot."""
        if self.grant is None or self.grant.released:
            return
        final = usage_from(
            usage,
            input_default=self.grant.input_charged,
            output_default=self.grant.output_charged + self._pending,
        )
        self._pending = 0
        await self._limiter.release(self.grant, final)

    async def release(self) -> None:
        """End the request without a usage (an error, a cancellation): what was streamed stays
        charged, the slot is freed. Idempotent; a no-op after ``finish``."""
        await self.finish(None)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


class Admission:
    """Client keys and per-key limits in front of the pipeline. One per process; reload by building
    a new one (and ``close`` the old one once its requests are done)."""

    def __init__(
        self,
        store: KeyStore,
        limiter: Limiter,
        *,
        shadow: bool = False,
        stats: AdmissionStats | None = None,
        config: AdmissionConfig | None = None,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.shadow = shadow
        self.stats = stats or AdmissionStats()
        self.config = config
        self._closed = False
        limiter.users += 1  # a reload shares it: the last Admission to close closes it

    @classmethod
    def from_config(
        cls, config: AdmissionConfig, *, clock: Clock | None = None, previous: Admission | None = None
    ) -> Admission:
        """Keys (inline and ``keys_file``, read now) and the configured backend. Raises
        ``ConfigError`` for a bad keys file.

        ``previous`` is the Admission of the config being replaced (a reload): its counters carry
        on, and when the backend and period are unchanged its limiter too, with the windows,
        queues and in-flight leases it holds (the new queue settings apply to it).
        """
        store = KeyStore.from_config(config)
        shadow = config.mode == "shadow"
        if previous is None:
            return cls(store, build_limiter(config, clock=clock), shadow=shadow, config=config)
        old = previous.config
        if old is not None and old.backend == config.backend and old.period == config.period:
            limiter = previous.limiter
            limiter.max_wait = config.queue.max_wait
            limiter.max_waiting = config.queue.max_waiting
        else:
            limiter = build_limiter(config, clock=clock)
        return cls(store, limiter, shadow=shadow, stats=previous.stats, config=config)

    @property
    def backend_kind(self) -> str:
        return "redis" if isinstance(self.limiter, RedisLimiter) else "memory"

    @property
    def backend_unavailable(self) -> bool:
        """True while the shared backend does not answer (a gauge for metrics)."""
        return isinstance(self.limiter, RedisLimiter) and self.limiter.unavailable

    @property
    def backend_errors(self) -> int:
        """Backend calls that failed or timed out since the limiter was built (a counter)."""
        return self.limiter.unavailable_total if isinstance(self.limiter, RedisLimiter) else 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.limiter.users -= 1
        if self.limiter.users == 0:
            await self.limiter.close()

    def authenticate(self, headers: Headers) -> KeyRecord | None:
        """The caller's key for an endpoint outside the limits (model lists, forwarded batches and
        files): raises ``AuthenticationFailed``; in shadow mode a failure is counted and None
        returned."""
        try:
            return self.store.authenticate(headers)
        except AuthenticationFailed as exc:
            self._refuse_or_pass("authentication", exc, None)
            return None

    async def admit(self, headers: Headers, model: str, estimated_input_tokens: int) -> Ticket:
        """Authenticate, authorise ``model`` and take room under the key's limits (waiting in the
        key's queue up to the configured time).

        Raises ``AuthenticationFailed`` (missing, malformed, unknown or revoked key),
        ``PermissionDenied`` (model not allowed) or ``RateLimited`` (its ``headers`` carry
        ``retry-after`` and the rate-limit headers). In shadow mode never raises: the would-be
        refusal is counted and a ticket without limits is returned.
        """
        try:
            record = self.store.authenticate(headers)
        except AuthenticationFailed as exc:
            return self._refuse_or_pass("authentication", exc, None)
        try:
            record.check_model(model)
        except PermissionDenied as exc:
            return self._refuse_or_pass("permission", exc, record)
        if not record.limits.any():
            self.stats.bump("admitted", record.name)
            return Ticket(record=record, grant=None, limiter=self.limiter, shadow=self.shadow)
        outcome = await self.limiter.acquire(
            record.name, record.limits, estimated_input_tokens, max_wait=0.0 if self.shadow else None
        )
        if isinstance(outcome, Refusal):
            log.info(
                "admission: key %s refused (%s), retry after %.1f s%s",
                record.name,
                outcome.reason,
                outcome.retry_after,
                " [shadow]" if self.shadow else "",
            )
            if self.shadow:
                self.stats.count(outcome.reason, shadow=True, key=record.name)
                return Ticket(record=record, grant=None, limiter=self.limiter, shadow=True)
            self.stats.count(outcome.reason, shadow=False, key=record.name)
            raise refusal_error(outcome)
        self.stats.bump("admitted", record.name)
        if outcome.waited > 0:
            self.stats.wait_seconds += outcome.waited
            self.stats.bump("waited", record.name)
        if outcome.degraded:
            self.stats.bump("degraded", record.name)
        return Ticket(record=record, grant=outcome, limiter=self.limiter, shadow=self.shadow)

    async def admit_batch(self, owner: str, model: str, estimated_input_tokens: int) -> Ticket:
        """One entry of a batch created by the key whose hash is ``owner``: the model checked
        again (the key may have changed since), then room taken under the key's *token* limits
        only, without waiting; its request and concurrency limits are left to interactive calls.

        Raises ``AuthenticationFailed`` (the key is gone or revoked), ``PermissionDenied`` or
        ``RateLimited`` (the batch runner tries the entry again after ``retry-after``). In shadow
        mode never raises."""
        record = self.store.by_digest(owner)
        if record is None or record.revoked:
            error = AuthenticationFailed("the API key that created this batch is no longer valid")
            return self._refuse_or_pass("authentication", error, None)
        try:
            record.check_model(model)
        except PermissionDenied as exc:
            return self._refuse_or_pass("permission", exc, record)
        limits = msgspec.structs.replace(record.limits, requests_per_minute=None, concurrency=None)
        if not limits.any():
            return Ticket(record=record, grant=None, limiter=self.limiter, shadow=self.shadow)
        outcome = await self.limiter.acquire(record.name, limits, estimated_input_tokens, max_wait=0.0)
        if isinstance(outcome, Refusal):
            self.stats.count(outcome.reason, shadow=self.shadow, key=record.name)
            if self.shadow:
                return Ticket(record=record, grant=None, limiter=self.limiter, shadow=True)
            raise refusal_error(outcome)
        return Ticket(record=record, grant=outcome, limiter=self.limiter, shadow=self.shadow)

    def _refuse_or_pass(self, reason: str, error: SidecarError, record: KeyRecord | None) -> Ticket:
        """Count the refusal; raise ``error``, or (shadow) let the request pass without limits."""
        self.stats.count(reason, shadow=self.shadow, key=record.name if record else "")
        if not self.shadow:
            raise error
        return Ticket(record=record, grant=None, limiter=self.limiter, shadow=True)


def refusal_error(refusal: Refusal) -> SidecarError:
    """The 429 a refusal becomes (for callers that drive a ``Limiter`` directly)."""
    return RateLimited(refusal.message, headers=refusal_headers(refusal))
