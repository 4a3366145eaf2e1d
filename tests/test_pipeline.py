"""The request pipeline in process: a ``Pipeline`` built from a config, driven with Calls."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anthropic
import grpc
import pytest

from sidecar.admission.limiter import Grant, Usage
from sidecar.config.load import build_config
from sidecar.core import Answer, Call, ForwardRequest, Target
from sidecar.errors import RateLimited, SidecarError
from sidecar.hops import HopLimitExceeded
from sidecar.messages.v1 import messages_pb2 as pb
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc
from sidecar.pipeline import Pipeline
from sidecar.upstreams.handler import HandlerUpstream
from tests.conftest import MOCK_CONFIG
from tests.core.test_grammar import START
from tests.inprocess import asgi_client, events_answer, http_app, message_answer, pipeline, running

KEY = "sk-pipeline-test-key"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def make_call(headers: dict[str, str], body: dict[str, Any] = BODY, endpoint: str = "messages") -> Call:
    return Call(
        endpoint=endpoint,
        body=dict(body),
        raw=None,
        model=str(body["model"]),
        stream=False,
        request_id="req_pipeline_test",
        door="http",
        headers=dict(headers),
    )


def gated(**tier: Any) -> Pipeline:
    return Pipeline(
        build_config(
            {
                "upstreams": {"m": {"provider": "mock"}},
                "routes": [{"match": "*", "upstream": "m"}],
                "hops": {"max_hops": 3},
                "admission": {
                    "queue": {"max_wait": 0},
                    "tiers": {"one": tier},
                    "keys": [
                        {"name": "a", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tier": "one"}
                    ],
                },
            }
        )
    )


@pytest.mark.parametrize("endpoint", ["messages", "count_tokens"])
async def test_a_looping_request_is_refused_before_it_spends_the_key(endpoint: str) -> None:
    pipeline = gated(requests_per_minute=1)
    try:
        send = pipeline.messages if endpoint == "messages" else pipeline.count_tokens
        with pytest.raises(HopLimitExceeded):
            await send(make_call({"x-api-key": KEY, "sidecar-hops": "3"}, endpoint=endpoint))
        # The key's one request a minute is still there, and then it is spent.
        await send(make_call({"x-api-key": KEY}, endpoint=endpoint))
        with pytest.raises(RateLimited):
            await send(make_call({"x-api-key": KEY}, endpoint=endpoint))
    finally:
        await pipeline.aclose()


async def test_server_timing_and_the_overhead_metric_agree_on_upstream_wait() -> None:
    """A pacing hold counts as upstream wait in both: the 429's retry-after-ms holds the second
    request about 0.3 s, and neither figure calls that the sidecar's own time."""
    from sidecar.errors import RateLimited
    from sidecar.telemetry import build_telemetry
    from tests.inprocess import message_answer, pipeline

    answers = 0

    async def handler(call: Call, target: Any) -> Any:
        nonlocal answers
        answers += 1
        if answers == 1:
            raise RateLimited("slow down", status=429, headers=[("retry-after-ms", "300")])
        return await message_answer(call, target)

    config = build_config(
        {
            "upstreams": {"a": {"provider": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
            "routes": [{"match": "*", "upstream": "a"}],
            "telemetry": {"metrics": True},
        }
    )
    p = pipeline(config, a=handler)
    telemetry = build_telemetry(config)
    try:
        with pytest.raises(RateLimited):
            await p.messages(make_call({}))
        call = make_call({})
        call.observer = telemetry.begin("http", "/v1/messages", call.headers)
        answer = await p.messages(call)
        call.observer.finish()
        assert call.upstream_wait >= 0.25
        p.server_timing(call, answer)
        timing = dict(answer.headers)["server-timing"]
        own = float(timing.split("dur=")[1].split(";")[0].split(",")[0]) / 1000
        telemetry.flush_metrics()
        rendered = telemetry.render_metrics()
        assert rendered is not None
        line = next(
            x
            for x in rendered[0].decode().splitlines()
            if x.startswith("sidecar_overhead_seconds_sum{") and 'door="http"' in x
        )
        overhead = float(line.rsplit(" ", 1)[1])
        assert own < 0.2 and overhead < 0.2, (own, overhead)
    finally:
        await telemetry.aclose()
        await p.aclose()


async def test_a_beta_system_message_with_only_output_config_reaches_the_upstream() -> None:
    p = pipeline(MOCK_CONFIG)
    try:
        message = await asgi_client(http_app(p)).beta.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=8,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "output_config": {"effort": "low"}, "clear_at": "next_user_message"},
            ],
        )
        assert message.stop_reason is not None
    finally:
        await p.aclose()


def _model(mid: str, **extra: Any) -> dict[str, Any]:
    return {"type": "model", "id": mid, "display_name": mid, "created_at": "2026-01-01T00:00:00Z", **extra}


LISTED = [
    _model("m-active", lifecycle="active"),
    _model("m-deprecated", lifecycle="deprecated"),
    _model("m-retired", lifecycle="retired"),
    _model("m-unsaid"),  # a model that does not say is active
]


async def _resolve_alias(request: ForwardRequest) -> Answer:
    """The upstream's GET /v1/models/{alias}: the ModelInfo of the model it names."""
    aliases = {"/v1/models/m-latest": "m-deprecated", "/v1/models/m-unlisted-alias": "m-nowhere"}
    if request.method == "GET" and request.path in aliases:
        return Answer(raw=json.dumps(_model(aliases[request.path])).encode(), upstream="a")
    raise SidecarError("not found", status=404, error_type="not_found_error")


async def test_models_honour_lifecycle_and_the_upstreams_aliases() -> None:
    upstream = HandlerUpstream("a", message_answer, models=LISTED, forward=_resolve_alias)
    p = pipeline(
        {"upstreams": {"a": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "a"}]}, a=upstream
    )
    client = asgi_client(http_app(p))
    try:
        assert [m.id for m in (await client.models.list()).data] == ["m-active", "m-deprecated", "m-unsaid"]
        retired = await client.models.list(lifecycle=["retired"])
        assert [m.id for m in retired.data] == ["m-retired"]
        both = await client.models.list(lifecycle=["active", "retired"], limit=2)
        assert [m.id for m in both.data] == ["m-active", "m-retired"] and both.has_more
        with pytest.raises(anthropic.BadRequestError, match="lifecycle"):
            await client.models.list(lifecycle=["gone"])  # type: ignore[list-item]
        assert (await client.models.retrieve("m-latest")).id == "m-deprecated"
        assert (await client.models.retrieve("m-retired")).id == "m-retired"
        for unknown in ("m-unlisted-alias", "no-such-model"):
            with pytest.raises(anthropic.NotFoundError):
                await client.models.retrieve(unknown)
        # The gRPC door pages the same way.
        async with running(
            {"upstreams": {"a": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "a"}]},
            a=upstream,
        ) as runtime:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
                stub = pb_grpc.MessagesStub(channel)
                page = await stub.ListModels(pb.ListModelsRequest(lifecycle=["deprecated", "retired"]))
                assert [m.id for m in page.data] == ["m-deprecated", "m-retired"]
                assert (await stub.GetModel(pb.GetModelRequest(model_id="m-latest"))).id == "m-deprecated"
    finally:
        await p.aclose()


async def test_a_stream_closed_before_its_first_event_releases_its_admission_lease() -> None:
    # Found by the cancellation storm (python -m reliability storm): a client that left between
    # the answer's start and its first event left its key's concurrency lease held for good.
    p = gated(concurrency=1)
    assert p.admission is not None
    for _ in range(3):  # with the lease leaked, the second would be refused (concurrency 1)
        call = make_call({"x-api-key": KEY}, {**BODY, "stream": True})
        call.stream = True
        answer = await p.messages(call)
        assert answer.events is not None
        assert p.admission.limiter.held_by_key() == {"a": 1}
        await answer.events.aclose()  # never iterated
        assert p.admission.limiter.held_by_key() == {}
    await p.aclose()


async def test_a_stream_that_ends_early_is_charged_the_input_its_upstream_reported() -> None:
    # Found by the cancellation storm's per-request charge check: a client that left after
    # message_start (which carries the upstream's input count) kept the admission estimate.
    async def handler(call: Call, target: Target) -> Answer:
        start = {**START, "message": {**START["message"], "usage": {"input_tokens": 50, "output_tokens": 1}}}
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 40}}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        return events_answer(start, block, delta, {"type": "content_block_stop", "index": 0})

    config = {
        "upstreams": {"m": {"provider": "mock"}},
        "routes": [{"match": "*", "upstream": "m"}],
        "admission": {
            "tiers": {"one": {"input_tokens_per_minute": 10_000, "output_tokens_per_minute": 10_000}},
            "keys": [{"name": "a", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tier": "one"}],
        },
    }
    p = pipeline(config, m=handler)
    assert p.admission is not None
    released: list[Usage | None] = []
    limiter = p.admission.limiter
    release = limiter.release

    async def recording(grant: Grant, usage: Usage | None = None) -> None:
        released.append(usage)
        await release(grant, usage)

    limiter.release = recording  # type: ignore[method-assign]
    for batches_read in (1, 3):  # after message_start; after the delta too
        call = make_call({"x-api-key": KEY}, {**BODY, "stream": True, "max_tokens": 100})
        call.stream = True
        answer = await p.messages(call)
        assert answer.events is not None and call.estimate() != 50
        batches = answer.events.batches()
        for _ in range(batches_read):
            await anext(batches)
        await batches.aclose()
        assert limiter.held_by_key() == {}
    # The output is what passed (1 from message_start; then the delta's 40 characters, ~10).
    assert released == [Usage(input_tokens=50, output_tokens=1), Usage(input_tokens=50, output_tokens=10)]
    await p.aclose()
