"""The gRPC door's Batches service over a real socket, with the generated stubs: the same batches
as the HTTP door (created on one door, read on the other), run on the built-in mock or forwarded
to an Anthropic upstream; errors as statuses with the HTTP door's Anthropic errors in trailers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar.grpc import convert
from sidecar.grpc.codec import plan_for
from sidecar.messages.v1 import batches_pb2 as bpb
from sidecar.messages.v1 import batches_pb2_grpc as bpb_grpc
from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded
from tests.inprocess import ThreadedSidecar

KEY = (("x-api-key", "k"), ("anthropic-version", "2023-06-01"))
MOCK = """
upstreams:
  m: {provider: mock}
routes:
  - {match: "*", upstream: m}
aliases: {sonnet: claude-sonnet-4-6}
"""


def entry(custom_id: str, text: str = "hello", model: str = "claude-sonnet-4-6", **extra: Any) -> Any:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 30,
            "messages": [{"role": "user", "content": text}],
            **extra,
        },
    }


def create_request(*entries: Any) -> bpb.CreateBatchRequest:
    return convert.create_batch_request_to_proto({"requests": list(entries)})


def start(tmp: Path, config: str, extra: str = "") -> ThreadedSidecar:
    path = tmp / "sidecar.yaml"
    path.write_text(config + f"\nbatches: {{dir: '{tmp / 'state'}', poll_interval: 0.02{extra}}}\n")
    return ThreadedSidecar("--config", str(path))


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSidecar]:
    sc = start(tmp_path_factory.mktemp("grpc-batches"), MOCK, ", concurrency: 2, max_requests: 50")
    yield sc
    sc.stop()


@pytest.fixture()
def stub(sidecar: ThreadedSidecar) -> Iterator[bpb_grpc.BatchesStub]:
    with grpc.insecure_channel(sidecar.grpc_target) as channel:
        yield bpb_grpc.BatchesStub(channel)


def http(sidecar: ThreadedSidecar, method: str, path: str, **kw: Any) -> httpx.Response:
    url = sidecar.http_url + "/v1/messages/batches" + path
    return httpx.request(method, url, headers={"x-api-key": "k"}, timeout=10, **kw)


def failure(call: Callable[[], object]) -> tuple[grpc.StatusCode, dict[str, str]]:
    """The status of a call that fails, and its trailers."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    err: Any = info.value
    return err.code(), dict(err.trailing_metadata())


def wait_ended(stub: bpb_grpc.BatchesStub, batch_id: str, timeout: float = 20) -> bpb.MessageBatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = stub.GetBatch(bpb.GetBatchRequest(batch_id=batch_id), metadata=KEY)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end")


def results(stub: bpb_grpc.BatchesStub, batch_id: str) -> list[dict[str, Any]]:
    lines = stub.Results(bpb.BatchResultsRequest(batch_id=batch_id), metadata=KEY)
    return [convert.batch_result_from_proto(line) for line in lines]


def http_results(sidecar: ThreadedSidecar, batch_id: str) -> list[dict[str, Any]]:
    r = http(sidecar, "GET", f"/{batch_id}/results")
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line]


def test_a_batch_from_create_to_results_same_as_http(
    stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar
) -> None:
    created = stub.CreateBatch(
        create_request(entry("a", "[mock echo] one two three", model="sonnet"), entry("b")), metadata=KEY
    )
    assert created.id.startswith("msgbatch_") and created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 2 and created.request_counts.succeeded == 0
    assert created.created_at.endswith("Z") and created.expires_at > created.created_at
    assert json.loads(created.extra_json)["results_url"] is None  # null: not a typed value
    batch = wait_ended(stub, created.id)
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (
        0,
        2,
        0,
        0,
        0,
    )
    assert batch.HasField("ended_at") and not batch.HasField("cancel_initiated_at")
    # The URL the HTTP door gives, usable as it is.
    assert batch.results_url == f"{sidecar.http_url}/v1/messages/batches/{batch.id}/results"
    # The other door sees the same batch.
    over_http = http(sidecar, "GET", f"/{batch.id}").json()
    assert convert.batch_from_proto(batch) == over_http
    # Results: one message per line, the same as the HTTP door's JSON Lines.
    streamed = results(stub, batch.id)
    assert streamed == http_results(sidecar, batch.id)
    fetched = httpx.get(batch.results_url, headers={"x-api-key": "k"}, timeout=10)
    assert [json.loads(line) for line in fetched.text.splitlines()] == streamed
    by_id = {r["custom_id"]: r["result"] for r in streamed}
    assert sorted(by_id) == ["a", "b"]
    assert by_id["a"]["type"] == "succeeded"
    assert by_id["a"]["message"]["content"][0]["text"] == "one two three"
    assert by_id["a"]["message"]["model"] == "claude-sonnet-4-6"  # the alias, resolved
    lines = list(stub.Results(bpb.BatchResultsRequest(batch_id=batch.id), metadata=KEY))
    assert lines[0].result.WhichOneof("result") == "succeeded"
    assert lines[0].result.succeeded.message.content[0].text.text == "one two three"


def test_an_errored_entry_is_an_errored_result(stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar) -> None:
    created = stub.CreateBatch(
        create_request(entry("bad", "[mock error=invalid_request_error] x"), entry("ok")), metadata=KEY
    )
    assert wait_ended(stub, created.id).request_counts.errored == 1
    lines = list(stub.Results(bpb.BatchResultsRequest(batch_id=created.id), metadata=KEY))
    errored = next(line for line in lines if line.custom_id == "bad")
    assert errored.result.WhichOneof("result") == "errored"
    assert errored.result.errored.error.type == "error"
    assert errored.result.errored.error.error.type == "invalid_request_error"
    assert [convert.batch_result_from_proto(line) for line in lines] == http_results(sidecar, created.id)


def test_created_over_http_read_over_grpc(stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar) -> None:
    created = http(sidecar, "POST", "", json={"requests": [entry("h")]}).json()
    batch = wait_ended(stub, created["id"])
    assert batch.request_counts.succeeded == 1
    assert results(stub, created["id"]) == http_results(sidecar, created["id"])


def test_list_pages_newest_first_as_http(stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar) -> None:
    ids = [stub.CreateBatch(create_request(entry("x")), metadata=KEY).id for _ in range(3)]

    def page(**params: Any) -> dict[str, Any]:
        request = convert.list_batches_request_to_proto(params)
        listed = convert.list_batches_response_from_proto(stub.ListBatches(request, metadata=KEY))
        over_http = http(sidecar, "GET", "", params=params).json()
        # Forwarded-free and read back to back: the same page on both doors (a batch may end
        # in between, so compare ids, cursors and the URLs of the batches that had ended).
        assert [b["id"] for b in listed["data"]] == [b["id"] for b in over_http["data"]]
        for ours, theirs in zip(listed["data"], over_http["data"], strict=True):
            assert ours["results_url"] in (None, theirs["results_url"])
        assert {k: listed.get(k) for k in ("has_more", "first_id", "last_id")} == {
            k: over_http[k] for k in ("has_more", "first_id", "last_id")
        }
        return listed

    first = page(limit=1)
    assert [b["id"] for b in first["data"]] == [ids[-1]] and first["has_more"]
    assert first["first_id"] == first["last_id"] == ids[-1]
    older = page(limit=2, after_id=ids[-1])
    assert [b["id"] for b in older["data"]] == [ids[1], ids[0]]
    newer = page(limit=5, before_id=ids[0])
    assert [b["id"] for b in newer["data"]] == [ids[2], ids[1]] and not newer["has_more"]
    default = stub.ListBatches(bpb.ListBatchesRequest(), metadata=KEY)
    assert [b.id for b in default.data[:3]] == ids[::-1]
    for limit in (0, 1001):
        code, trailers = failure(lambda: stub.ListBatches(bpb.ListBatchesRequest(limit=limit), metadata=KEY))  # noqa: B023
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert trailers["anthropic-error-message"].startswith("limit:")


def test_cancel_then_delete(stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar) -> None:
    slow = [entry(f"s{i}", "[mock ttft_ms=300] slow") for i in range(8)]
    created = stub.CreateBatch(create_request(*slow), metadata=KEY)
    ref = bpb.DeleteBatchRequest(batch_id=created.id)
    # Running: delete is refused with the HTTP door's error, and so are its results.
    code, trailers = failure(lambda: stub.DeleteBatch(ref, metadata=KEY))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    refused = http(sidecar, "DELETE", f"/{created.id}")
    assert refused.status_code == 400
    assert (trailers["anthropic-error-type"], trailers["anthropic-error-message"]) == (
        refused.json()["error"]["type"],
        refused.json()["error"]["message"],
    )
    assert "only ended batches can be deleted" in trailers["anthropic-error-message"]
    assert trailers["request-id"].startswith("req_")
    code, trailers = failure(lambda: results(stub, created.id))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "has not ended" in trailers["anthropic-error-message"]
    canceling = stub.CancelBatch(bpb.CancelBatchRequest(batch_id=created.id), metadata=KEY)
    assert canceling.processing_status == "canceling" and canceling.HasField("cancel_initiated_at")
    batch = wait_ended(stub, created.id)
    counts = batch.request_counts
    assert counts.canceled >= 4 and counts.succeeded + counts.canceled == 8
    lines = list(stub.Results(bpb.BatchResultsRequest(batch_id=created.id), metadata=KEY))
    kinds = sorted(line.result.WhichOneof("result") for line in lines)
    assert kinds == sorted(["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled)
    assert [convert.batch_result_from_proto(line) for line in lines] == http_results(sidecar, created.id)
    # Ended: deleted, and then gone on both doors.
    deleted = stub.DeleteBatch(ref, metadata=KEY)
    assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
    code, _ = failure(lambda: stub.GetBatch(bpb.GetBatchRequest(batch_id=created.id), metadata=KEY))
    assert code == grpc.StatusCode.NOT_FOUND
    assert http(sidecar, "GET", f"/{created.id}").status_code == 404


def test_a_bad_entry_is_invalid_argument_and_nothing_is_stored(
    stub: bpb_grpc.BatchesStub, sidecar: ThreadedSidecar
) -> None:
    before = [b.id for b in stub.ListBatches(bpb.ListBatchesRequest(limit=1000), metadata=KEY).data]
    body = {"requests": [entry("a"), {"custom_id": "b", "params": {**entry("b")["params"], "messages": []}}]}
    code, trailers = failure(
        lambda: stub.CreateBatch(convert.create_batch_request_to_proto(body), metadata=KEY)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers["anthropic-error-type"] == "invalid_request_error"
    assert trailers["anthropic-error-message"].startswith("requests.1.params.messages")
    refused = http(sidecar, "POST", "", json=body)
    assert (
        refused.status_code == 400
        and refused.json()["error"]["message"] == trailers["anthropic-error-message"]
    )
    # Other refusals, in the HTTP door's words.
    for requests, says in (
        ([entry("a"), entry("a")], "requests.1.custom_id: 'a' is used by another request"),
        ([entry("a", stream=True)], "requests.0.params.stream"),
        ([{"custom_id": "a"}], "requests.0.params: Field required"),
        ([entry(f"e{i}") for i in range(51)], "at most 50 requests"),
        ([], "requests: List should have at least 1 item"),
    ):
        code, trailers = failure(lambda: stub.CreateBatch(create_request(*requests), metadata=KEY))  # noqa: B023
        assert code == grpc.StatusCode.INVALID_ARGUMENT and says in trailers["anthropic-error-message"]
    # A proto that holds no JSON (invalid JSON text) is named by its path in the batch.
    request = create_request(entry("a"), entry("b"))
    request.requests[1].params.tools.add().custom.input_schema = "{not json"
    code, trailers = failure(lambda: stub.CreateBatch(request, metadata=KEY))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers["anthropic-error-message"].startswith("requests.1.params.tools.0.input_schema:")
    after = [b.id for b in stub.ListBatches(bpb.ListBatchesRequest(limit=1000), metadata=KEY).data]
    assert after == before


def test_unknown_and_malformed_ids(stub: bpb_grpc.BatchesStub) -> None:
    unknown = "msgbatch_unknown"
    calls: list[Callable[[str], object]] = [
        lambda i: stub.GetBatch(bpb.GetBatchRequest(batch_id=i), metadata=KEY),
        lambda i: stub.CancelBatch(bpb.CancelBatchRequest(batch_id=i), metadata=KEY),
        lambda i: stub.DeleteBatch(bpb.DeleteBatchRequest(batch_id=i), metadata=KEY),
        lambda i: list(stub.Results(bpb.BatchResultsRequest(batch_id=i), metadata=KEY)),
    ]
    for call in calls:
        code, trailers = failure(lambda: call(unknown))  # noqa: B023
        assert code == grpc.StatusCode.NOT_FOUND and trailers["anthropic-error-type"] == "not_found_error"
        for bad in ("", "../files", "msgbatch_1/cancel"):
            code, trailers = failure(lambda: call(bad))  # noqa: B023
            assert (
                code == grpc.StatusCode.INVALID_ARGUMENT and "batch_id" in trailers["anthropic-error-message"]
            )


def test_health_and_reflection_list_batches(sidecar: ThreadedSidecar) -> None:
    with grpc.insecure_channel(sidecar.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        named = health.Check(health_pb2.HealthCheckRequest(service="sidecar.messages.v1.Batches"))
        assert named.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(
            stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        )
        names = {s.name for s in replies[0].list_services_response.service}
        assert {"sidecar.messages.v1.Batches", "sidecar.messages.v1.Messages"} <= names


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_with_client_keys_the_call_metadata_decides_the_owner(tmp_path: Path) -> None:
    config = f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  tiers:
    all: {{}}
    some: {{models: ["claude-haiku-*"]}}
  keys:
    - {{name: a, sha256: {_sha("sk-a")}, tier: all}}
    - {{name: b, sha256: {_sha("sk-b")}, tier: all}}
    - {{name: narrow, sha256: {_sha("sk-n")}, tier: some}}
"""
    sc = start(tmp_path, config)
    try:
        with grpc.insecure_channel(sc.grpc_target) as channel:
            stub = bpb_grpc.BatchesStub(channel)
            a, b, n = ((("x-api-key", k),) for k in ("sk-a", "sk-b", "sk-n"))
            created = stub.CreateBatch(create_request(entry("e0"), entry("e1")), metadata=a)
            got = stub.GetBatch(bpb.GetBatchRequest(batch_id=created.id), metadata=a)
            assert got.id == created.id
            code, _ = failure(lambda: stub.GetBatch(bpb.GetBatchRequest(batch_id=created.id), metadata=b))
            assert code == grpc.StatusCode.NOT_FOUND
            assert list(stub.ListBatches(bpb.ListBatchesRequest(), metadata=b).data) == []
            # The bearer form of the key is the same key.
            bearer = (("authorization", "Bearer sk-a"),)
            assert [x.id for x in stub.ListBatches(bpb.ListBatchesRequest(), metadata=bearer).data] == [
                created.id
            ]
            code, trailers = failure(
                lambda: stub.CreateBatch(
                    create_request(entry("ok", model="claude-haiku-4-5"), entry("no")), metadata=n
                )
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert "requests.1.params.model" in trailers["anthropic-error-message"]
            code, _ = failure(lambda: stub.CreateBatch(create_request(entry("x"))))
            assert code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        sc.stop()


def test_forwarded_to_an_anthropic_upstream(tmp_path: Path, upstream: FakeAnthropic) -> None:
    config = f"""
upstreams:
  an: {{provider: anthropic, base_url: "{upstream.base_url}", api_key: sk-up}}
routes:
  - {{match: claude-renamed, upstream: an, model: claude-real}}
  - {{match: "*", upstream: an}}
"""
    batch: dict[str, Any] = {
        "id": "msgbatch_up1",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 0, "expired": 1},
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "ended_at": "2026-01-01T00:10:00Z",
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_up1/results",
    }
    lines = [
        {"custom_id": "a", "result": {"type": "succeeded", "message": {"id": "msg_1", "type": "message"}}},
        {"custom_id": "b", "result": {"type": "expired"}},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)

    def plan(rec: Recorded) -> Plan:
        if rec.path.endswith("/results"):
            # Chunks that split lines anywhere.
            chunks = [body[:7], body[7:60], body[60:61], body[61:]]
            return Plan(chunks=chunks, headers={"content-type": "application/binary"})
        if rec.path.startswith("/v1/messages/batches"):
            return Plan(body=json.dumps(batch).encode())
        return Plan()

    upstream.reset(plan)
    sc = start(tmp_path, config)
    try:
        with grpc.insecure_channel(sc.grpc_target) as channel:
            stub = bpb_grpc.BatchesStub(channel)
            created = stub.CreateBatch(
                create_request(entry("a", model="claude-renamed"), entry("b", model="claude-other")),
                metadata=KEY,
            )
            assert created.id == "msgbatch_up1"
            # The upstream's URL, moved to the sidecar's HTTP door (as that door does).
            assert created.results_url == f"{sc.http_url}/v1/messages/batches/msgbatch_up1/results"
            sent = [r for r in upstream.requests if r.path == "/v1/messages/batches"]
            assert [e["params"]["model"] for e in sent[0].json()["requests"]] == [
                "claude-real",
                "claude-other",
            ]
            got = stub.GetBatch(bpb.GetBatchRequest(batch_id="msgbatch_up1"), metadata=KEY)
            assert convert.batch_from_proto(got) == {
                **batch,
                "results_url": f"{sc.http_url}/v1/messages/batches/msgbatch_up1/results",
            }
            assert upstream.requests[-1].path == "/v1/messages/batches/msgbatch_up1"
            assert results(stub, "msgbatch_up1") == lines
            assert upstream.requests[-1].path == "/v1/messages/batches/msgbatch_up1/results"
    finally:
        sc.stop()


def test_results_url_on_the_public_origin_or_a_bare_path_without_the_http_door(tmp_path: Path) -> None:
    def ended_url(*args: str, listeners: str = "") -> str:
        path = tmp_path / "sidecar.yaml"
        path.write_text(
            listeners + MOCK + f"\nbatches: {{dir: '{tmp_path / 'state'}', poll_interval: 0.02}}\n"
        )
        sc = ThreadedSidecar("--config", str(path), *args)
        try:
            with grpc.insecure_channel(sc.grpc_target) as channel:
                stub = bpb_grpc.BatchesStub(channel)
                batch = wait_ended(stub, stub.CreateBatch(create_request(entry("a")), metadata=KEY).id)
                listed = stub.ListBatches(bpb.ListBatchesRequest(limit=1), metadata=KEY).data[0]
                assert listed.results_url == batch.results_url
                return batch.results_url
        finally:
            sc.stop()

    public = ended_url(listeners="listeners: {http: {public_origin: 'https://sidecar.example:8443'}}\n")
    assert public.startswith("https://sidecar.example:8443/v1/messages/batches/msgbatch_")
    assert public.endswith("/results")
    # Nothing serves an HTTP URL then: the path, as before.
    bare = ended_url("--no-http")
    assert bare.startswith("/v1/messages/batches/msgbatch_") and bare.endswith("/results")


# --- the conversion -------------------------------------------------------------------------------


def test_every_batches_message_compiles() -> None:
    path_parameters = {"GetBatchRequest", "CancelBatchRequest", "DeleteBatchRequest", "BatchResultsRequest"}
    for name, desc in bpb.DESCRIPTOR.message_types_by_name.items():
        if name not in path_parameters:
            assert plan_for(desc).kind in {"struct", "union"}, name


@pytest.mark.parametrize(
    "result",
    [
        {"type": "succeeded", "message": {"id": "m", "type": "message", "content": [], "stop_reason": None}},
        {
            "type": "errored",
            "error": {"type": "error", "error": {"type": "api_error", "message": "x"}, "request_id": None},
        },
        {"type": "canceled"},
        {"type": "expired"},
        {"type": "a_future_kind", "x": [1, 1.0]},
    ],
)
def test_result_lines_round_trip(result: dict[str, Any]) -> None:
    line = {"custom_id": "c-1", "result": result}
    assert convert.batch_result_from_proto(convert.batch_result_to_proto(line)) == line


@pytest.mark.parametrize(
    "method", ["CreateBatch", "GetBatch", "ListBatches", "CancelBatch", "DeleteBatch", "Results"]
)
def test_undecodable_protobuf_is_invalid_argument_with_trailers(
    sidecar: ThreadedSidecar, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As on the Messages service (found there by grpc_fuzz): grpcio itself answered UNKNOWN and
    # logged a traceback; both services are now registered by the same add_service.
    with grpc.insecure_channel(sidecar.grpc_target) as channel:
        path = f"/sidecar.messages.v1.Batches/{method}"
        if method == "Results":
            stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
            code, trailers = failure(lambda: list(stream(b"\x0a\x64ab", timeout=10)))
        else:
            unary = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            code, trailers = failure(lambda: unary(b"\x0a\x64ab", timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers["anthropic-error-type"] == "invalid_request_error"
    assert "not a valid sidecar.messages.v1." in trailers["anthropic-error-message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
