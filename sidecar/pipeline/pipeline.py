"""The pipeline both doors call: validate, check hops, admit, route, send through the filters.

It speaks Anthropic JSON (dicts) only; the doors own their wires. One ``Pipeline`` holds one
config snapshot (router, adapters and their filter chains, policy plans, admission); a reload
builds a new one and swaps it atomically, and in-flight calls keep the snapshot they started
with. The upstream pacing budgets and admission counters carry over a reload.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..admission.pacing import Pacers
from ..config import Config
from ..core import Answer, Call, ForwardRequest, Target, Upstream, new_request_id
from ..core.credentials import CREDENTIAL_HEADERS
from ..core.validate import check_count_tokens, check_messages
from ..errors import NotFound, PermissionDenied, SidecarError
from ..files import Files, has_file_sources, inline_files
from ..hops import add_server_timing, check_hops, forward_hops, server_timing_entry
from ..routing import Resolved, Router
from ..routing.policy import RoutePlan, execute
from ..upstreams.registry import build_upstream
from .filters import Send, compose

if TYPE_CHECKING:  # imported when a config has an admission section (see __init__, _admitted)
    from ..admission.gate import Admission
    from ..admission.keys import KeyRecord
    from ..files import FileRecord

__all__ = ["Pipeline"]

_EPOCH = "1970-01-01T00:00:00Z"


class Pipeline:
    def __init__(
        self,
        config: Config,
        previous: Pipeline | None = None,
        *,
        adapters: Mapping[str, Upstream] | None = None,
        files: Files | None = None,
    ) -> None:
        """One config snapshot. ``previous`` is the snapshot a reload replaces: the upstream
        budgets, admission counters and (unless its backend changed) the limiter carry over.
        ``adapters`` replace the adapters the config would build, by upstream name (the
        in-process seam, ``sidecar.upstreams.handler``). ``files``: the process's file store
        (a reload keeps ``previous``'s), which file references in requests resolve against."""
        self.config = config
        self.router = Router(config.routes, config.aliases)
        self.files: Files | None = (
            files if files is not None else (previous.files if previous is not None else None)
        )
        self.pacers: Pacers = previous.pacers if previous is not None else Pacers()
        given = adapters or {}
        self.upstreams: dict[str, Upstream] = {
            name: given.get(name) or build_upstream(name, cfg) for name, cfg in config.upstreams.items()
        }
        # Each upstream's attempt chain: its filters around its adapter (see filters.py).
        forwarding = frozenset(r.match for r in config.routes if r.forward_client_key)
        self._send_to: dict[str, Send] = {
            name: compose(
                self.upstreams[name],
                cfg,
                self.pacers,
                admission=config.admission is not None,
                forwarding_routes=forwarding,
            )
            for name, cfg in config.upstreams.items()
        }
        # Routes with a policy get their runtime state (balancers, breakers, budget) here, once
        # per config snapshot.
        self.plans: dict[str, RoutePlan] = {
            route.match: RoutePlan(route.policy, name=route.match)
            for route in config.routes
            if route.policy is not None
        }
        # Files API: served from the sidecar's own store, or forwarded (``files.store``).
        self.files_local = _files_local(config, self.router, self.upstreams)
        # Last: a reload hands the limiter over only once nothing else here can fail.
        self.admission: Admission | None = None
        if config.admission is not None:
            from ..admission.gate import Admission

            self.admission = Admission.from_config(
                config.admission,
                previous=previous.admission if previous is not None else None,
            )

    @property
    def uses_mock(self) -> bool:
        return any(self.upstreams[n].provider == "mock" for n in self.router.upstream_names())

    async def messages(self, call: Call) -> Answer:
        """``POST /v1/messages``: a whole Message or an event stream."""
        call.plain_blocks = check_messages(call.body, call.headers.get("anthropic-version"))[1]
        return await self._route(call)

    async def batch_entry(self, call: Call, owner: str | None = None) -> Answer:
        """One entry of a batch the sidecar runs itself (``sidecar.batches``): a non-streaming
        Messages call, validated, routed, retried, paced and observed as any. With client keys
        it is charged to the token limits of the key whose hash is ``owner``, but takes none of
        its request or concurrency slots (interactive calls keep them), and no key goes upstream.
        """
        call.plain_blocks = check_messages(call.body, call.headers.get("anthropic-version"))[1]
        resolved = self.router.resolve(call.model)
        if self.admission is None or owner is None:
            return await self._send(call, resolved)
        ticket = await self.admission.admit_batch(owner, resolved.name, call.estimate())
        # Not `finally`: a compiled await there re-raises the caller's handled exception (setup.py).
        try:
            answer = await self._send(call, resolved, owner)
            await ticket.finish(answer.json().get("usage"))
        except BaseException:
            await ticket.release()
            raise
        await ticket.release()
        return answer

    async def count_tokens(self, call: Call) -> Answer:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``."""
        call.plain_blocks = check_count_tokens(call.body, call.headers.get("anthropic-version"))[1]
        return await self._route(call)

    def _route(self, call: Call) -> Awaitable[Answer]:
        """Where a validated call goes, and the coroutine that takes it there (a plain function,
        so the await chain gets no frame of its own). Sidecar chains first: a request that looped
        is refused before it spends anything of its key, and the next hop learns where it stands."""
        hops = check_hops(call.headers, self.config.hops)
        forward_hops(call.headers, hops, self.config.hops)
        resolved = self.router.resolve(call.model)
        return self._send(call, resolved) if self.admission is None else self._admitted(call, resolved)

    async def _admitted(self, call: Call, resolved: Resolved) -> Answer:
        """Admission on: the client's key is checked and charged, and never goes upstream."""
        from ..admission.headers import rename_upstream_headers  # loaded with admission
        from .charge import charged_stream

        assert self.admission is not None
        ticket = await self.admission.admit(call.headers, resolved.name, call.estimate())
        try:
            owner = ticket.record.digest if ticket.record is not None else ""
            answer = await self._send(call, resolved, owner)
        except BaseException as exc:
            await ticket.release()
            if isinstance(exc, SidecarError):
                exc.headers = [*rename_upstream_headers(exc.headers), *ticket.headers()]
            raise
        # The sidecar's limits for this key; the upstream's own stay visible under upstream-.
        answer.headers[:] = [*rename_upstream_headers(answer.headers), *ticket.headers()]
        if answer.events is not None:
            answer.events = charged_stream(answer.events, ticket, call.body.get("max_tokens"))
        else:
            # Not `finally`: a compiled await there re-raises the caller's handled exception (setup.py).
            try:
                await ticket.finish(answer.json().get("usage") if call.endpoint == "messages" else None)
            except BaseException:
                await ticket.release()
                raise
            await ticket.release()
        return answer

    def _authenticated(self, headers: dict[str, str], *, any_model: bool) -> KeyRecord | None:
        """Admission on, outside the limits (model lists, forwarded endpoints): check the key and
        drop it from what goes upstream. ``any_model``: a key limited to some models is refused
        (403), as batches and files could reach any model. Returns the key's record (None when
        admission is off or in shadow mode)."""
        if self.admission is None:
            return None
        record = self.admission.authenticate(headers)
        for name in CREDENTIAL_HEADERS:
            headers.pop(name, None)
        if any_model and record is not None and record.models != ("*",) and not self.admission.shadow:
            self.admission.stats.count("permission", shadow=False, key=record.name)
            raise PermissionDenied(
                "this API key may use only some models; batches, files and other endpoints that "
                "can reach any model are not open to it"
            )
        return record

    async def _send(self, call: Call, resolved: Resolved, owner: str | None = None) -> Answer:
        """``owner``: whose files the call may reference (the key's hash; None: anyone's)."""
        route, target = resolved.require()
        unknown = (
            await self._inline_files(call, owner)
            if not call.plain_blocks and has_file_sources(call.body, call.raw)
            else []
        )
        plan = self.plans.get(route.match)
        if plan is None:
            if unknown:
                self._check_files(target, unknown)
            return await self._send_to[target.upstream](call, target)
        # Weighted targets, retries (invisible on streams until the first content delta),
        # fallbacks, breakers: sidecar.routing.policy.
        if unknown:
            return await execute(
                call, plan, lambda target: self._attempt(call, target, unknown), model=resolved.name
            )
        return await execute(
            call, plan, lambda target: self._send_to[target.upstream](call, target), model=resolved.name
        )

    async def _attempt(self, call: Call, target: Target, unknown: list[tuple[str, str]]) -> Answer:
        self._check_files(target, unknown)
        return await self._send_to[target.upstream](call, target)

    async def _inline_files(self, call: Call, owner: str | None) -> list[tuple[str, str]]:
        """Inline the file references the sidecar's store holds (and ``owner`` may read) into
        ``call.body``; returns the (path, id) of the others."""
        files = self.files if self.files_local else None

        async def lookup(file_id: str) -> tuple[FileRecord, bytes] | None:
            record = await files.get(owner, file_id) if files is not None else None
            content = await files.read(record) if files is not None and record is not None else None
            return (record, content) if record is not None and content is not None else None

        body, unknown = await inline_files(call.body, lookup)
        if body is not call.body:
            call.body, call.raw, call.input_estimate = body, None, None
        return unknown

    def _check_files(self, target: Target, unknown: list[tuple[str, str]]) -> None:
        """File ids the sidecar does not know: an Anthropic upstream may (they go there as
        they are); any other upstream cannot read them (404, as the API answers)."""
        if self.upstreams[target.upstream].provider != "anthropic":
            path, file_id = unknown[0]
            raise NotFound(f"{path}.source.file_id: File not found: {file_id}")

    def server_timing(self, call: Call, answer: Answer) -> None:
        """Add this hop's time (without the upstream wait) in front of ``server-timing``, so a
        caller sees where time went across a chain of sidecars."""
        hops = self.config.hops
        if not hops.server_timing:
            return
        position = call.headers.get(hops.header, "1")
        overhead = time.perf_counter() - call.started - call.upstream_wait
        hop = int(position) if position.isdigit() else 1
        add_server_timing(answer.headers, server_timing_entry(hop, overhead))

    def breaker_states(self) -> list[tuple[str, str, str]]:
        """(route, upstream, state) for every target of every policy route, for metrics."""
        return [
            (route, target.upstream, target.breaker.state.value)
            for route, plan in self.plans.items()
            for target in plan.targets()
        ]

    async def list_models(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every model this sidecar serves: what its upstreams list, then names the config routes.
        With client keys: the models the caller's key may use."""
        headers = dict(headers)
        return await self._models(headers, self._authenticated(headers, any_model=False))

    async def _models(self, headers: dict[str, str], record: KeyRecord | None) -> list[dict[str, Any]]:
        models: dict[str, dict[str, Any]] = {}
        for name in self.router.upstream_names():
            for info in await self.upstreams[name].list_models(headers):
                mid = info.get("id")
                if isinstance(mid, str) and mid not in models:
                    models[mid] = info
        for mid in self.router.exact_names():
            if mid not in models:
                models[mid] = {"type": "model", "id": mid, "display_name": mid, "created_at": _EPOCH}
        if record is not None:
            return [info for mid, info in models.items() if record.allows(mid)]
        return list(models.values())

    async def get_model(self, model_id: str, headers: dict[str, str]) -> dict[str, Any]:
        """A listed model by its id or an alias, as the API accepts aliases: the config's, and an
        Anthropic upstream's (its ``GET /v1/models/{alias}`` answers the ModelInfo of the model
        the alias names, under that model's ``id``)."""
        headers = dict(headers)
        listed = {
            info["id"]: info
            for info in await self._models(headers, self._authenticated(headers, any_model=False))
        }
        info = listed.get(model_id) or listed.get(self.router.resolve(model_id).name)
        if info is None:
            info = listed.get(await self._upstream_alias(model_id, headers))
        if info is None:
            raise NotFound(f"model: {model_id}")
        return info

    async def _upstream_alias(self, model_id: str, headers: dict[str, str]) -> str | None:
        """The id an Anthropic upstream resolves ``model_id`` to (None when none knows it)."""
        for name in self.router.upstream_names():
            upstream = self.upstreams[name]
            if upstream.provider != "anthropic":
                continue
            request = ForwardRequest(
                method="GET",
                path="/v1/models/" + quote(model_id, safe=""),
                headers=headers,
                body=b"",
                request_id=new_request_id(),
            )
            try:
                answer = await upstream.forward(request)
            except SidecarError as exc:
                if exc.status in (400, 404):
                    continue  # this upstream does not know the name
                raise
            if answer.raw is None:  # not JSON: no ModelInfo
                if answer.close is not None:
                    await answer.close()
                continue
            resolved = answer.json().get("id")
            if isinstance(resolved, str):
                return resolved
        return None

    async def forward(self, request: ForwardRequest) -> Answer:
        """Another ``/v1/`` endpoint (batches, files, ...): relayed to an Anthropic-speaking upstream.

        The catch-all route's upstream when it speaks Anthropic, else the first one that does;
        where none does, the adapter answers 404 saying so. With client keys, only keys that may
        use every model reach these endpoints, and their key is not forwarded.
        """
        self._authenticated(request.headers, any_model=True)
        names = self.router.upstream_names()
        catch_all = self.router.resolve("*").target
        preferred = [catch_all.upstream] if catch_all is not None else []
        candidates = preferred + names
        chosen = next((n for n in candidates if self.upstreams[n].provider == "anthropic"), candidates[0])
        return await self.upstreams[chosen].forward(request)

    async def aclose(self) -> None:
        # The file store is the process's (the runtime closes it), not this snapshot's.
        if self.admission is not None:
            await self.admission.close()
        for upstream in self.upstreams.values():
            await upstream.aclose()


def _files_local(config: Config, router: Router, upstreams: Mapping[str, Upstream]) -> bool:
    """``files.store`` is local: as configured, else when the catch-all route ("*") has no
    Anthropic upstream (where it has one, /v1/files keeps going there)."""
    if config.files.store is not None:
        return config.files.store == "local"
    route = router.resolve("*").route
    if route is None:
        return True
    names = route.policy.upstream_names() if route.policy is not None else [route.upstream or ""]
    return not any(name in upstreams and upstreams[name].provider == "anthropic" for name in names)
