"""The official SDK drives the Files API through the sidecar's own store (files.upload / list /
retrieve_metadata / delete, and download answered 400 file_not_downloadable), on the built-in mock
and on the strict fake OpenAI server; file references in messages are resolved inline on
translated routes and on the mock, and a local id is sent inline to an Anthropic upstream. Bad
input is a 4xx envelope with nothing stored half-way. Two replicas with batches on Redis and one
files.dir share the files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.admission.conftest import RedisServer
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.openai_api import FakeOpenAI
from tests.inprocess import ThreadedSidecar

BETA = "files-api-2025-04-14"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
TEXT = "The sidecar stores this text.\n"


def start(tmp: Path, config: str, files: str = "") -> ThreadedSidecar:
    path = tmp / "sidecar.yaml"
    path.write_text(
        config + f"\nbatches: {{dir: '{tmp / 'state'}'}}\n" + (f"files: {{{files}}}\n" if files else "")
    )
    return ThreadedSidecar("--config", str(path), "--no-grpc")


def on_disk(tmp: Path) -> list[str]:
    folder = tmp / "state" / "files"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def user(*blocks: Any) -> list[Any]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "[mock echo] describe"}]}]


def ref(kind: str, file_id: str) -> dict[str, Any]:
    return {"type": kind, "source": {"type": "file", "file_id": file_id}}


MOCK = """
upstreams:
  m: {provider: mock}
routes:
  - {match: "*", upstream: m}
"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def mock_sidecar(state: Path) -> Iterator[ThreadedSidecar]:
    sc = start(state, MOCK, "max_bytes: 4096")
    yield sc
    sc.stop()


@pytest.fixture()
def client(mock_sidecar: ThreadedSidecar) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_sidecar.http_url, api_key="any-key", max_retries=0)


def test_upload_list_retrieve_delete_download_on_the_mock(client: anthropic.Anthropic, state: Path) -> None:
    first = client.beta.files.upload(file=("notes.txt", TEXT.encode(), "text/plain"), betas=[BETA])
    assert first.id.startswith("file_") and first.type == "file"
    assert (first.filename, first.mime_type, first.size_bytes) == ("notes.txt", "text/plain", len(TEXT))
    assert first.downloadable is False
    # The MIME type is detected from the bytes, whatever the client called them.
    image = client.files.upload(file=("pic", io.BytesIO(PNG), "application/octet-stream"))
    assert image.mime_type == "image/png" and image.size_bytes == len(PNG)
    assert client.beta.files.retrieve_metadata(first.id, betas=[BETA]) == first
    assert client.files.retrieve_metadata(image.id).filename == "pic"
    assert {first.id, image.id} <= set(on_disk(state))

    # Both paging shapes: the cursor (next_page) the SDK follows, and the ids of older SDKs.
    ids = [f.id for f in client.files.list(limit=1)]
    assert ids[:2] == [image.id, first.id]
    raw = httpx.get(f"{client.base_url}/v1/files", params={"limit": 1}, headers={"x-api-key": "k"}).json()
    assert raw["data"][0]["id"] == image.id and raw["has_more"] is True
    assert raw["first_id"] == raw["last_id"] == image.id and raw["next_page"] == f"page_{image.id}"
    older = httpx.get(f"{client.base_url}/v1/files", params={"after_id": image.id, "limit": 1}).json()
    assert older["data"][0]["id"] == first.id
    newer = httpx.get(f"{client.base_url}/v1/files", params={"before_id": first.id, "limit": 5}).json()
    assert [f["id"] for f in newer["data"]] == [image.id] and newer["has_more"] is False
    only = client.files.list(ids=[first.id, "file_nope"])
    assert [f.id for f in only] == [first.id]

    with pytest.raises(anthropic.BadRequestError) as info:
        client.beta.files.download(first.id, betas=[BETA])
    assert info.value.status_code == 400 and "file_not_downloadable" in str(info.value)
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]

    deleted = client.beta.files.delete(first.id, betas=[BETA])
    assert (deleted.id, deleted.type) == (first.id, "file_deleted")
    assert first.id not in on_disk(state)
    for call in (client.files.retrieve_metadata, client.files.delete, client.files.download):
        with pytest.raises(anthropic.NotFoundError) as missing:
            call(first.id)
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    client.files.delete(image.id)


def test_file_references_resolve_on_the_mock(client: anthropic.Anthropic) -> None:
    text = client.files.upload(file=("notes.txt", TEXT.encode(), "text/plain"))
    image = client.files.upload(file=("pic.png", PNG, "image/png"))
    pdf = client.files.upload(file=("doc.pdf", PDF, "application/pdf"))
    answer = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=20,
        messages=user(ref("image", image.id), ref("document", pdf.id), ref("document", text.id)),  # type: ignore[arg-type]
    )
    assert answer.content[0].text == "describe"  # type: ignore[union-attr]
    # The mock counts the inline sources: an image and a PDF 1600 tokens each, the text its own.
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=user(ref("image", image.id), ref("document", pdf.id)),  # type: ignore[arg-type]
    )
    assert counted.input_tokens >= 3200
    client.files.delete(pdf.id)
    for gone in (pdf.id, "file_unknown0001"):
        with pytest.raises(anthropic.NotFoundError) as info:
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=user(ref("document", gone))
            )  # type: ignore[arg-type]
        assert f"messages.0.content.0.source.file_id: File not found: {gone}" in str(info.value)
    with pytest.raises(anthropic.BadRequestError, match="an image block takes"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=user(ref("image", text.id)))  # type: ignore[arg-type]


def test_bad_uploads_are_4xx_envelopes_with_nothing_stored(client: anthropic.Anthropic, state: Path) -> None:
    before = on_disk(state)
    listed = [f.id for f in client.files.list()]
    url = f"{client.base_url}/v1/files"
    # Over the limit (4096 here), announced or not: 413, refused while reading.
    with pytest.raises(anthropic.APIStatusError) as info:
        client.files.upload(file=("big.bin", b"x" * 5000, "application/octet-stream"))
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]

    def chunked() -> Iterator[bytes]:
        yield b'--b\r\ncontent-disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(10):
            yield b"y" * 1000
        yield b"\r\n--b--\r\n"

    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": chunked(), "headers": {"content-type": "multipart/form-data; boundary=b"}},
            413,
            "request_too_large",
        ),
        ({"files": {"other": ("a.txt", b"hi")}}, 400, "file: Field required"),
        ({"data": {"purpose": "x"}, "files": {"upload": ("a", b"hi")}}, 400, "file: Field required"),
        ({"json": {"file": "x"}}, 400, "multipart/form-data"),
        (
            {
                "content": b'--b\r\ncontent-disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            400,
            "closing boundary",
        ),
    ]
    for kwargs, status, says in cases:
        got = httpx.post(url, **kwargs)
        assert got.status_code == status, got.text
        assert got.json()["type"] == "error" and says in got.text
    assert on_disk(state) == before
    assert [f.id for f in client.files.list()] == listed


def test_client_keys_see_only_their_own_files(tmp_path: Path) -> None:
    def sha(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    config = (
        MOCK
        + f"""
admission:
  tiers: {{all: {{}}}}
  keys:
    - {{name: a, sha256: {sha("sk-a")}, tier: all}}
    - {{name: b, sha256: {sha("sk-b")}, tier: all}}
"""
    )
    sc = start(tmp_path, config)
    try:
        a = anthropic.Anthropic(base_url=sc.http_url, api_key="sk-a", max_retries=0)
        b = anthropic.Anthropic(base_url=sc.http_url, api_key="sk-b", max_retries=0)
        mine = a.files.upload(file=("a.txt", b"for a", "text/plain"))
        assert [f.id for f in a.files.list()] == [mine.id]
        assert list(b.files.list()) == []
        for call in (b.files.retrieve_metadata, b.files.delete):
            with pytest.raises(anthropic.NotFoundError):
                call(mine.id)
        with pytest.raises(anthropic.NotFoundError):
            b.messages.create(model="m", max_tokens=5, messages=user(ref("document", mine.id)))  # type: ignore[arg-type]
        assert a.messages.create(model="m", max_tokens=5, messages=user(ref("document", mine.id))).content
        assert httpx.get(sc.http_url + "/v1/files").status_code == 401
    finally:
        sc.stop()


def test_on_the_strict_fake_openai_server(tmp_path: Path) -> None:
    fake = FakeOpenAI().start()
    config = f"""
upstreams:
  oa: {{provider: openai, base_url: "{fake.base_url}", api_key: sk-oa, send_pdf: true}}
routes:
  - {{match: "*", upstream: oa}}
"""
    sc = start(tmp_path, config)
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        image = client.beta.files.upload(file=("pic.png", PNG, "image/png"), betas=[BETA])
        pdf = client.beta.files.upload(file=("doc.pdf", PDF, "application/pdf"), betas=[BETA])
        text = client.files.upload(file=("notes.txt", TEXT.encode(), "text/plain"))
        assert [f.id for f in client.beta.files.list(betas=[BETA])] == [text.id, pdf.id, image.id]
        with pytest.raises(anthropic.BadRequestError, match="file_not_downloadable"):
            client.files.download(pdf.id)
        fake.reset()
        client.messages.create(
            model="gpt-4o",
            max_tokens=20,
            messages=user(ref("image", image.id), ref("document", pdf.id), ref("document", text.id)),  # type: ignore[arg-type]
        )
        assert fake.rejected == []
        parts = fake.requests[-1].json()["messages"][-1]["content"]
        assert parts[0] == {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        }
        assert parts[1]["type"] == "file"
        assert (
            parts[1]["file"]["file_data"] == "data:application/pdf;base64," + base64.b64encode(PDF).decode()
        )
        assert parts[2] == {"type": "text", "text": TEXT}
        # In a batch entry too.
        batch = client.messages.batches.create(
            requests=[
                {
                    "custom_id": "a",
                    "params": {"model": "gpt-4o", "max_tokens": 5, "messages": user(ref("image", image.id))},
                }
            ]  # type: ignore[list-item,typeddict-item]
        )
        import time

        deadline = time.monotonic() + 20
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        result = next(iter(client.messages.batches.results(batch.id)))
        assert result.result.type == "succeeded"
        assert fake.rejected == []
        fake.reset()
        with pytest.raises(anthropic.NotFoundError, match="File not found: file_theirs"):
            client.messages.create(model="gpt-4o", max_tokens=5, messages=user(ref("image", "file_theirs")))  # type: ignore[arg-type]
        assert fake.requests == []
    finally:
        sc.stop()
        fake.stop()


def test_local_ids_go_inline_to_an_anthropic_upstream(tmp_path: Path, upstream: FakeAnthropic) -> None:
    # The catch-all is Anthropic, so files are forwarded unless the store is set local.
    config = f"""
upstreams:
  an: {{provider: anthropic, base_url: "{upstream.base_url}", api_key: sk-up}}
routes:
  - {{match: "*", upstream: an}}
"""
    sc = start(tmp_path, config, "store: local")
    try:
        client = anthropic.Anthropic(base_url=sc.http_url, api_key="k", max_retries=0)
        pdf = client.files.upload(file=("doc.pdf", PDF, "application/pdf"))
        assert not [r for r in upstream.requests if r.path.startswith("/v1/files")]
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            messages=user(ref("document", pdf.id), ref("image", "file_upstreams0wn")),  # type: ignore[arg-type]
        )
        sent = [r for r in upstream.requests if r.path == "/v1/messages"][-1].json()
        blocks = sent["messages"][0]["content"]
        assert blocks[0]["source"] == {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(PDF).decode(),
        }
        # An id the sidecar does not know may be the upstream's own: it goes as it is.
        assert blocks[1] == ref("image", "file_upstreams0wn")
        assert pdf.id not in json.dumps(sent)
    finally:
        sc.stop()


def test_the_default_with_an_anthropic_catch_all_forwards_files(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    config = f"""
upstreams:
  an: {{provider: anthropic, base_url: "{upstream.base_url}", api_key: sk-up}}
routes:
  - {{match: "*", upstream: an}}
"""
    sc = start(tmp_path, config)
    try:
        httpx.get(sc.http_url + "/v1/files", headers={"anthropic-beta": BETA})
        assert [r.path for r in upstream.requests] == ["/v1/files"]
        assert upstream.requests[0].headers.get("anthropic-beta") == BETA
        assert not (tmp_path / "state").exists()
    finally:
        sc.stop()


def test_two_replicas_share_files_through_redis_and_one_volume(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """What README "Several replicas" asks for: batches (and so file metadata) on one Redis, and
    one files.dir both mount. An upload on one replica is listed, read, referenced and deleted on
    the other; neither keeps the metadata in its own SQLite file."""
    shared = tmp_path / "shared-files"
    replicas = []
    try:
        for name in ("a", "b"):
            path = tmp_path / f"{name}.yaml"
            path.write_text(
                MOCK
                + f"""
batches:
  dir: '{tmp_path / name}'
  store: {{kind: redis, url: "{redis_server.url}", key_prefix: "files-{tmp_path.name}:"}}
files: {{dir: '{shared}'}}
"""
            )
            replicas.append(ThreadedSidecar("--config", str(path), "--no-grpc"))
        one, two = (anthropic.Anthropic(base_url=r.http_url, api_key="k", max_retries=0) for r in replicas)
        first = one.files.upload(file=("notes.txt", TEXT.encode(), "text/plain"))
        second = one.beta.files.upload(file=("pic.png", PNG, "image/png"), betas=[BETA])
        assert two.files.retrieve_metadata(first.id) == first
        # Both paging shapes, on the other replica.
        assert [f.id for f in two.files.list(limit=1)] == [second.id, first.id]
        older = httpx.get(f"{two.base_url}/v1/files", params={"after_id": second.id, "limit": 1}).json()
        assert [f["id"] for f in older["data"]] == [first.id] and older["has_more"] is False
        newer = httpx.get(f"{two.base_url}/v1/files", params={"before_id": first.id}).json()
        assert [f["id"] for f in newer["data"]] == [second.id]
        answer = two.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=20,
            messages=user(ref("document", first.id), ref("image", second.id)),  # type: ignore[arg-type]
        )
        assert answer.content[0].text == "describe"  # type: ignore[union-attr]
        two.files.delete(first.id)
        with pytest.raises(anthropic.NotFoundError):
            one.files.retrieve_metadata(first.id)
        assert sorted(p.name for p in shared.iterdir()) == [second.id]
        assert not (tmp_path / "a" / "batches.sqlite3").exists()
        assert not (tmp_path / "b" / "batches.sqlite3").exists()
    finally:
        for replica in replicas:
            replica.stop()
