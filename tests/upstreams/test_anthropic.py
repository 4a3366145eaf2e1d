"""The Anthropic adapter (sidecar/upstreams/anthropic.py) through the HTTP door: what reaches the
upstream, and what the client gets back."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_api import MESSAGE, FakeAnthropic, Plan, Recorded, sse, text_stream
from tests.inprocess import ThreadedSidecar

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}


def test_json_body_reaches_upstream_byte_for_byte(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    # Odd spacing, key order, a float written as 1.0, unicode escapes and an unknown beta field:
    # all must reach the upstream exactly as the client wrote them.
    raw = (
        b'{ "max_tokens":64,"model" : "claude-sonnet-4-6",\n "temperature": 1.0, "x_beta_field": {"n": 1, "big": 12345678901234567890},'
        b'"messages":[{"role":"user","content":"caf\\u00e9 \xe2\x98\x95"}] }'
    )
    r = httpx.post(
        proxy_sidecar.http_url + "/v1/messages",
        content=raw,
        headers={
            "x-api-key": "client-key",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "foo-2026-01-01,bar",
            "content-type": "application/json",
        },
    )
    assert r.status_code == 200
    rec = upstream.requests[-1]
    assert rec.body == raw
    assert rec.path == "/v1/messages"
    assert rec.headers["x-api-key"] == "client-key"
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert rec.headers["anthropic-beta"] == "foo-2026-01-01,bar"
    assert rec.headers["Accept-Encoding"] == "identity"


def test_json_answer_bytes_and_headers_relayed(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    answer = b'{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"a","new_field":[1,2.50]}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1},"unknown_top":true}'
    upstream.reset(
        lambda rec: Plan(
            body=answer, headers={"anthropic-ratelimit-requests-remaining": "99", "request-id": "req_up_1"}
        )
    )
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages", json=BODY, headers={"x-api-key": "k"})
    assert r.content == answer
    assert r.headers["request-id"] == "req_up_1"
    assert r.headers["sidecar-request-id"].startswith("req_")
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "99"


def test_sse_bytes_relayed_exactly_including_unknown_events(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    unknown = [
        sse("brand_new_event", {"type": "brand_new_event", "payload": {"x": 1.0}}),
        b": an SSE comment line\n\n",
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "future_block", "z": None}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]
    chunks = text_stream("Streaming through the sidecar, byte for byte.", extra=unknown)
    # Split one event across two writes and merge two others into one: framing must not matter.
    chunks = [chunks[0][:10], chunks[0][10:] + chunks[1], *chunks[2:]]
    upstream.reset(lambda rec: Plan(chunks=chunks))
    with httpx.stream(
        "POST",
        proxy_sidecar.http_url + "/v1/messages",
        json={**BODY, "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        received = b"".join(r.iter_raw())
    assert received == b"".join(chunks)


def test_sdk_create_and_stream(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="sdk-key", max_retries=0)
    message = client.messages.create(**BODY)
    assert message.content[0].text == MESSAGE["content"][0]["text"]  # type: ignore[index]
    assert message._request_id == "req_fake_upstream"
    # SDK 2.x sends its key as a bearer token; a transparent proxy forwards it.
    assert upstream.requests[-1].headers["Authorization"] == "Bearer sdk-key"
    with client.messages.stream(**BODY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hi there."
    assert final.content[0].text == "Hi there."  # type: ignore[union-attr]
    assert final.usage.output_tokens == 5


def test_upstream_key_replaces_client_credentials(fake_anthropic: FakeAnthropic) -> None:
    from tests.conftest import start_sidecar

    fake_anthropic.reset()
    sp = start_sidecar(
        "--upstream",
        fake_anthropic.base_url,
        "--upstream-key",
        "server-secret",
        "--no-grpc",
        expect_grpc=False,
    )
    try:
        client = anthropic.Anthropic(base_url=sp.http_url, api_key="client-key", max_retries=0)
        client.messages.create(**BODY)
        headers = fake_anthropic.requests[-1].headers
        assert headers["x-api-key"] == "server-secret"
        assert "Authorization" not in headers and "authorization" not in headers
    finally:
        sp.stop()
        fake_anthropic.reset()


def test_beta_query_is_ignored_and_count_tokens(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages?beta=true", json=BODY, headers={"x-api-key": "k"})
    assert r.status_code == 200
    count = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}]
    )
    assert count.input_tokens == 42
    assert upstream.requests[-1].path == "/v1/messages/count_tokens"


@pytest.mark.parametrize(
    ("status", "etype", "exc"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.RequestTooLargeError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.OverloadedError),
    ],
)
def test_upstream_errors_keep_status_type_and_retry_after(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, status: int, etype: str, exc: type[Exception]
) -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {"type": etype, "message": f"upstream says {etype}"},
            "request_id": "req_up_err",
        }
    )
    upstream.reset(
        lambda rec: Plan(
            status=status, body=body.encode(), headers={"retry-after": "7", "request-id": "req_up_err"}
        )
    )
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    with pytest.raises(exc) as info:
        client.messages.create(**BODY)
    err = info.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == status
    assert err.body["error"] == {"type": etype, "message": f"upstream says {etype}"}  # type: ignore[index]
    assert err.request_id == "req_up_err"
    assert err.response.headers["retry-after"] == "7"


def test_mid_stream_error_event_surfaces_in_sdk(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    chunks = text_stream("partial answer")[:4] + [
        sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
    upstream.reset(lambda rec: Plan(chunks=chunks))
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(**BODY) as stream:
        for _ in stream.text_stream:
            pass
    assert "overloaded_error" in str(info.value) or "Overloaded" in str(info.value)


def test_json_answer_cut_mid_body_is_a_retryable_upstream_error(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    # Found by the fault campaign (python -m reliability faults): a JSON answer whose connection
    # drops before its content-length was sent became the sidecar's own 500 with a traceback.
    upstream.reset(lambda rec: Plan(cut_body_after=40))
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages", json=BODY, headers={"x-api-key": "k"})
    assert r.status_code == 500  # api_error, as UpstreamError maps it (not "Internal server error")
    error = r.json()["error"]
    assert error["type"] == "api_error"
    assert error["message"].startswith("upstream 'default' broke the connection")


def _split_error(received: bytes, head: bytes) -> dict[str, object]:
    assert received.startswith(head)
    tail = received[len(head) :]
    assert tail.startswith(b"event: error\ndata: ") and tail.endswith(b"\n\n"), tail
    return json.loads(tail.split(b"data: ", 1)[1])  # type: ignore[no-any-return]


def test_stream_cut_mid_event_ends_with_error_event(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    # The upstream ends its body cleanly in the middle of an event, without message_stop: the
    # whole events go through byte for byte, the cut-off one is dropped, and an error ends it.
    chunks = text_stream("abc")[:3]
    upstream.reset(lambda rec: Plan(chunks=[*chunks, b'event: content_block_delta\ndata: {"ty']))
    with httpx.stream(
        "POST",
        proxy_sidecar.http_url + "/v1/messages",
        json={**BODY, "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        received = b"".join(r.iter_raw())
    error = _split_error(received, b"".join(chunks))
    assert error["error"] == {
        "type": "api_error",
        "message": "upstream 'default' ended the stream without message_stop",
    }


def test_unterminated_last_event_gets_its_terminator(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    chunks = text_stream("abc")
    upstream.reset(lambda rec: Plan(chunks=[*chunks[:-1], chunks[-1].rstrip(b"\n")]))
    with httpx.stream(
        "POST",
        proxy_sidecar.http_url + "/v1/messages",
        json={**BODY, "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        received = b"".join(r.iter_raw())
    assert received == b"".join(chunks)


def test_dropped_upstream_connection_becomes_error_event(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    chunks = text_stream("a longer answer that will be cut")
    upstream.reset(lambda rec: Plan(chunks=chunks, reset_after=4))
    with httpx.stream(
        "POST",
        proxy_sidecar.http_url + "/v1/messages",
        json={**BODY, "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        received = b"".join(r.iter_raw())
    error = _split_error(received, b"".join(chunks[:4]))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"  # type: ignore[index]
    assert error["request_id"] == r.headers["sidecar-request-id"]


def test_models_paging_and_get(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    page = client.models.list(limit=2)
    assert [m.id for m in page.data] == ["claude-fake-0", "claude-fake-1"]
    assert page.has_more
    assert [m.id for m in page] == [f"claude-fake-{i}" for i in range(5)]  # auto-paging via after_id
    assert client.models.retrieve("claude-fake-3").display_name == "Fake 3"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


def test_models_ask_every_lifecycle_and_resolve_the_upstreams_aliases(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    def planner(rec: Recorded) -> Plan:
        if rec.path == "/v1/models/claude-fake":  # the upstream's alias of claude-fake-3
            info = {
                "type": "model",
                "id": "claude-fake-3",
                "display_name": "Fake 3",
                "created_at": "2026-01-01T00:00:00Z",
            }
            return Plan(body=json.dumps(info).encode())
        if rec.path.startswith("/v1/models/"):
            return Plan(
                status=404, body=b'{"type":"error","error":{"type":"not_found_error","message":"no"}}'
            )
        return upstream._default_plan(rec)

    upstream.reset(planner)
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    client.models.list()
    # The sidecar filters by the client's lifecycle[] itself: it asks the upstream for every stage.
    assert parse_qs(upstream.requests[0].query)["lifecycle[]"] == ["active", "deprecated", "retired"]
    assert client.models.retrieve("claude-fake").id == "claude-fake-3"
    assert upstream.requests[-1].path == "/v1/models/claude-fake"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


def test_other_endpoints_forwarded_and_results_url_rewritten(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    batch = {
        "id": "msgbatch_1",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "ended_at": "2026-01-01T01:00:00Z",
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_1/results",
    }
    result_line = (
        json.dumps({"custom_id": "a", "result": {"type": "succeeded", "message": MESSAGE}}).encode() + b"\n"
    )

    def plan(rec):  # type: ignore[no-untyped-def]
        if rec.path.endswith("/results"):
            return Plan(body=result_line, headers={"content-type": "application/binary"})
        return Plan(body=json.dumps(batch).encode())

    upstream.reset(plan)
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    got = client.messages.batches.retrieve("msgbatch_1")
    assert got.results_url == proxy_sidecar.http_url + "/v1/messages/batches/msgbatch_1/results"
    results = list(client.messages.batches.results("msgbatch_1"))
    assert results[0].custom_id == "a"
    assert [r.path for r in upstream.requests] == [
        "/v1/messages/batches/msgbatch_1",
        "/v1/messages/batches/msgbatch_1",
        "/v1/messages/batches/msgbatch_1/results",
    ]


def test_file_content_streams_through_unchanged(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    import os

    blob = os.urandom(3 * 1024 * 1024)
    upstream.reset(
        lambda rec: Plan(
            chunks=[blob[i : i + 65536] for i in range(0, len(blob), 65536)],
            headers={"content-type": "application/octet-stream"},
        )
    )
    r = httpx.get(
        proxy_sidecar.http_url + "/v1/files/file_1/content?beta=true",
        headers={"x-api-key": "k", "anthropic-beta": "files-api-2025-04-14"},
    )
    assert r.status_code == 200 and r.content == blob
    assert r.headers["content-type"] == "application/octet-stream"
    rec = upstream.requests[-1]
    assert (rec.method, rec.path, rec.query) == ("GET", "/v1/files/file_1/content", "beta=true")
    assert rec.headers["anthropic-beta"] == "files-api-2025-04-14"


def test_file_upload_is_forwarded(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    meta = {
        "id": "file_9",
        "type": "file",
        "filename": "a.txt",
        "mime_type": "text/plain",
        "size_bytes": 5,
        "created_at": "2026-01-01T00:00:00Z",
    }
    upstream.reset(lambda rec: Plan(body=json.dumps(meta).encode()))
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    got = client.beta.files.upload(file=("a.txt", b"hello", "text/plain"))
    assert got.id == "file_9"
    rec = upstream.requests[-1]
    assert rec.method == "POST" and rec.path == "/v1/files"
    assert rec.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b"hello" in rec.body


def test_a_large_upload_is_relayed_as_it_arrives_with_its_length(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    """Over 1 MiB the body streams through (never held whole: a 500 MB upload must fit the
    container's memory) and keeps the client's content-length, byte for byte."""
    meta = {"id": "file_10", "type": "file", "filename": "big.bin", "mime_type": "application/octet-stream",
            "size_bytes": 3_000_000, "created_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    upstream.reset(lambda rec: Plan(body=json.dumps(meta).encode()))
    content = bytes(range(256)) * (3_000_000 // 256)
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    got = client.beta.files.upload(file=("big.bin", content, "application/octet-stream"))
    assert got.id == "file_10"
    rec = upstream.requests[-1]
    assert rec.headers.get("Transfer-Encoding") is None
    assert int(rec.headers["Content-Length"]) == len(rec.body) > len(content)
    assert content in rec.body
