"""Smoke tests for the benchmark harness: the fake upstream and the load generator, direct; then
``python -m bench`` itself in small sizes (direct, nginx, the stand-in and the sidecar).

Everything runs as subprocesses (``python -m bench.…`` from the repository root), so the tests do not
depend on how pytest names this package. Counts, parsing and the shape of the results only, no timing.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools
import pytest

from bench.processes import sidecar_build, standin_argv, standin_stack
from tests.test_native import BUILT, NATIVE

REPO = Path(__file__).resolve().parents[2]
DELTAS = 20  # the fake upstream's default
EVENTS_PER_ANSWER = (
    DELTAS + 6
)  # message_start, content_block_start, ping, deltas, block_stop, message_delta, message_stop
TIMEOUT_S = 15


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@contextlib.contextmanager
def _child(argv: list[str], first_line: str, what: str) -> Iterator[str]:
    """A bench server child from the repository root; yields group 1 of its first stdout line
    (``first_line``, a regex), and stops it with SIGTERM at the end."""
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
        assert ready, f"{what} did not start"
        line = proc.stdout.readline()
        m = re.fullmatch(first_line, line)
        assert m, f"unexpected first line {line!r}"
        yield m.group(1)
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    # SIGTERM ends it (uvicorn re-raises the signal once it has shut down).
    assert code in (0, -signal.SIGTERM), f"{what} exited with {code}"


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    argv = [sys.executable, "-m", "bench.fake_upstream", "--port", "0", "--max-seconds", "60"]
    with _child(argv, r"fake upstream listening on (http://127\.0\.0\.1:\d+)\n", "fake upstream") as url:
        yield url


def _loadgen(url: str, *args: str) -> dict[str, Any]:
    done = _run_module("bench.loadgen", url, "--json", *args)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def test_json_requests_are_counted(upstream_url: str) -> None:
    r = _loadgen(upstream_url, "--mode", "json", "-c", "2", "-n", "20", "-d", "10")
    assert r["completed"] == 20
    assert r["ok"] == 20
    assert r["errors"] == 0
    assert r["statuses"] == {"200": 20}
    assert r["stopped_by"] == "requests"
    assert r["reconnects"] == 0
    assert set(r["latency_ms"]) == {"p50", "p90", "p99", "max", "mean"}
    assert r["events"] == 0


def test_sse_streams_are_parsed_into_events(upstream_url: str) -> None:
    r = _loadgen(upstream_url, "--mode", "sse", "-c", "2", "-n", "20", "-d", "10", "--count-names")
    assert r["completed"] == 20
    assert r["ok"] == 20
    assert r["errors"] == 0
    assert r["incomplete_streams"] == 0
    assert r["statuses"] == {"200": 20}
    assert r["event_counts"] == {str(EVENTS_PER_ANSWER): 20}  # every response, the right number of events
    assert r["events"] == 20 * EVENTS_PER_ANSWER
    assert r["event_names"] == {
        "content_block_delta": 20 * DELTAS,
        "content_block_start": 20,
        "content_block_stop": 20,
        "message_delta": 20,
        "message_start": 20,
        "message_stop": 20,
        "ping": 20,
    }
    assert set(r["ttft_ms"]) == {"p50", "p90", "p99", "max", "mean"}


@pytest.fixture(scope="module", params=["uvicorn", "native"])
def standin_url(request: pytest.FixtureRequest, upstream_url: str) -> Iterator[str]:
    """The stand-in proxy on each of its stacks, in front of the fake upstream."""
    argv = [*standin_argv(upstream_url, request.param), "--max-seconds", "60"]
    with _child(argv, r"sidecar http listening on (http://127\.0\.0\.1:\d+)\n", "stand-in") as url:
        yield url


def test_standin_stacks_forward_json_and_sse(standin_url: str) -> None:
    r = _loadgen(standin_url, "--mode", "json", "-c", "2", "-n", "20", "-d", "10")
    assert (r["ok"], r["errors"], r["statuses"]) == (20, 0, {"200": 20})
    r = _loadgen(standin_url, "--mode", "sse", "-c", "2", "-n", "20", "-d", "10", "--count-names")
    assert (r["ok"], r["errors"], r["incomplete_streams"]) == (20, 0, 0)
    assert r["event_counts"] == {str(EVENTS_PER_ANSWER): 20}


def test_standin_argv_names_its_stack() -> None:
    uvicorn, native = standin_argv("http://u", "uvicorn"), standin_argv("http://u", "native")
    assert "--stack" not in uvicorn and native[native.index("--stack") + 1] == "native"
    assert (standin_stack(uvicorn), standin_stack(native)) == ("uvicorn", "native")


def test_the_sidecar_s_build_is_named() -> None:
    # Compiled and pure differ by a third in CPU per request: every figure says which ran.
    assert sidecar_build() == (f"{len(NATIVE)} modules compiled" if BUILT.exists() else "pure Python")


def test_time_limit_stops_an_unbounded_count(upstream_url: str) -> None:
    r = _loadgen(upstream_url, "--mode", "json", "-c", "2", "-n", "100000000", "-d", "0.3")
    assert r["stopped_by"] == "duration"
    assert r["errors"] == 0
    assert r["ok"] == r["completed"]
    assert isinstance(r["completed"], int) and 0 < r["completed"] < 100000000


class _Responses:
    """Collects pipelined responses with httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, b"".join(self._body)))


def test_fake_upstream_pipelining_chunked_bodies_and_framing(upstream_url: str) -> None:
    port = int(upstream_url.rsplit(":", 1)[1])
    json_body = b'{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
    sse_body = b'{"model":"claude-haiku-4-5","stream":true,"max_tokens":8,"messages":[]}'
    requests = (
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (len(json_body), json_body)
        + b"POST /v1/messages?beta=true HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (10, sse_body[:10], len(sse_body) - 10, sse_body[10:])
        + b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    got = _Responses()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(requests)  # all three at once: pipelined
        deadline = time.monotonic() + TIMEOUT_S
        while len(got.done) < 3 and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got.parser.feed_data(data)
    assert [status for status, _, _ in got.done] == [200, 200, 404]

    _, headers, body = got.done[0]
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_")
    message = json.loads(body)
    assert message["type"] == "message" and message["model"] == "claude-haiku-4-5"
    assert message["stop_reason"] == "end_turn" and message["content"][0]["type"] == "text"
    assert 400 <= len(body) <= 900

    _, headers, body = got.done[1]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    text = body.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert len(events) == EVENTS_PER_ANSWER
    names = []
    for event in events:
        event_line, data_line = event.split("\n")
        name = event_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name  # spec: data repeats the name
        names.append(name)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * DELTAS
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]

    status, _, body = got.done[2]
    assert json.loads(body)["error"]["type"] == "not_found_error"


def _get_json(url: str, path: str) -> Any:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"GET %b HTTP/1.1\r\nhost: x\r\n\r\n" % path.encode())
        got = _Responses()
        deadline = time.monotonic() + TIMEOUT_S
        while not got.done and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got.parser.feed_data(data)
    assert got.done, "no answer"
    status, _, body = got.done[0]
    assert status == 200
    return json.loads(body)


def test_hang_probe_records_when_the_connection_closes(upstream_url: str) -> None:
    """A ``bench-hang-after`` request: three events, then nothing; its close is recorded by id."""
    port = int(upstream_url.rsplit(":", 1)[1])
    body = json.dumps(
        {
            "model": "bench-hang-after",
            "stream": True,
            "max_tokens": 8,
            "metadata": {"user_id": "smoke-after-1"},
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
        )
        deadline = time.monotonic() + TIMEOUT_S
        while b"event: content_block_delta" not in got and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got += data
        t_client = time.monotonic()  # CLOCK_MONOTONIC, the same clock the server reads
    assert got.startswith(b"HTTP/1.1 200")
    names = re.findall(rb"event: (\w+)", got)
    assert names == [b"message_start", b"content_block_start", b"content_block_delta"]
    rec = _get_json(upstream_url, "/_bench/closes?id=smoke-after-1&wait_ms=5000")
    assert rec["id"] == "smoke-after-1"
    assert isinstance(rec["seen"], float) and isinstance(rec["closed"], float)
    assert rec["seen"] <= t_client <= rec["closed"]  # causality across processes, not a timing bound
    assert rec["how"] in ("eof", "lost", "reset")
    everything = _get_json(upstream_url, "/_bench/closes")
    assert any(r["id"] == "smoke-after-1" for r in everything["closes"])


@pytest.mark.parametrize(("kind", "n"), [("before", 2), ("after", 3)])
def test_cancellation_probes_direct(upstream_url: str, kind: str, n: int) -> None:
    done = _run_module("bench.cancel", upstream_url, "--kind", kind, "-n", str(n), "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert (r["door"], r["kind"]) == ("http", kind)
    assert r["probes"] == n and r["closed"] == n
    assert r["missing"] == 0 and r["errors"] == 0, r["error_samples"]
    assert len(r["samples_ms"]) == n
    assert sum(r["how"].values()) == n
    assert set(r["close_ms"]) == {"p50", "p90", "p99", "max", "mean"}


GRPC_SMOKE = """
import json
from bench import grpc_loadgen as g
from sidecar.grpc import convert
out = {
    "unary": convert.request_from_proto(g.build_request("unary")),
    "stream": convert.request_from_proto(g.build_request("stream")),
    "probe": convert.request_from_proto(g.build_probe_request("after", "p-1")),
    "deadline": convert.request_from_proto(g.build_probe_request("deadline", "p-2")),
    "metadata": [list(kv) for kv in g.METADATA],
}
print(json.dumps(out))
"""


def test_grpc_loadgen_builds_requests_and_answers_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-c", GRPC_SMOKE], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["unary"]["model"] == "claude-sonnet-4-6" and "stream" not in out["unary"]
    assert out["unary"]["messages"][0]["role"] == "user"
    assert out["stream"]["stream"] is True
    assert out["probe"]["model"] == "bench-hang-after" and out["probe"]["stream"] is True
    assert out["probe"]["metadata"] == {"user_id": "p-1"}
    assert out["deadline"]["model"] == "bench-hang-before" and "stream" not in out["deadline"]
    assert ["x-api-key", "bench"] in out["metadata"] and ["anthropic-version", "2023-06-01"] in out[
        "metadata"
    ]

    # Worker mode, as python -m bench drives it: one command per line, one result line each.
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.grpc_loadgen", "--serve"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        commands = '{"seq": 1, "op": "ping"}\n{"seq": 2, "op": "nonsense"}\n'
        stdout, stderr = proc.communicate(commands, timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "grpc loadgen ready"
    assert lines[1] == 'result 1 {"pong":true}'
    assert lines[2].startswith("result 2 ") and "error" in json.loads(lines[2].split(" ", 2)[2])


def _raw_chunked(port: int, body: bytes) -> tuple[bytes, list[bytes]]:
    """POST /v1/chat/completions (keep-alive); the response head and its HTTP chunks, framing parsed by hand."""
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + TIMEOUT_S
        while not got.endswith(b"\r\n0\r\n\r\n") and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    head, sep, rest = got.partition(b"\r\n\r\n")
    assert sep, "no response head"
    chunks: list[bytes] = []
    for _ in range(10_000):  # bounded
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return head, chunks
        assert rest[size : size + 2] == b"\r\n"
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    raise AssertionError("too many chunks")


def test_fake_upstream_chat_completions(upstream_url: str) -> None:
    """``POST /v1/chat/completions``: a chat.completion JSON, and a chunk stream ending in [DONE]."""
    port = int(upstream_url.rsplit(":", 1)[1])
    json_body = b'{"model":"gpt-bench","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
    got = _Responses()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b"
            % (len(json_body), json_body)
        )
        deadline = time.monotonic() + TIMEOUT_S
        while not got.done and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got.parser.feed_data(data)
    status, headers, body = got.done[0]
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-request-id"].startswith("req_")
    completion = json.loads(body)
    assert completion["object"] == "chat.completion" and completion["model"] == "gpt-bench"
    (choice,) = completion["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(usage["prompt_tokens_details"]["cached_tokens"], int)

    # The Anthropic stream's delta texts, to compare the chunk stream's content with.
    sse_body = b'{"model":"gpt-bench","stream":true,"max_tokens":8,"messages":[]}'
    sse = _Responses()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b"
            % (len(sse_body), sse_body)
        )
        deadline = time.monotonic() + TIMEOUT_S
        while not sse.done and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            sse.parser.feed_data(data)
    anthropic_texts = [
        json.loads(line.removeprefix("data: "))["delta"]["text"]
        for line in sse.done[0][2].decode().split("\n")
        if line.startswith("data: ") and '"content_block_delta"' in line
    ]
    assert len(anthropic_texts) == DELTAS

    for include_usage in (True, False):
        request: dict[str, Any] = {"model": "gpt-bench", "stream": True, "messages": []}
        if include_usage:
            request["stream_options"] = {"include_usage": True}
        head, chunks = _raw_chunked(port, json.dumps(request).encode())
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"\r\ncontent-type: text/event-stream" in head and b"\r\ntransfer-encoding: chunked" in head
        # one data: line per HTTP chunk, [DONE] last
        assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") and c.count(b"\n\n") == 1 for c in chunks)
        assert chunks[-1] == b"data: [DONE]\n\n"
        parsed = [json.loads(c[len(b"data: ") :]) for c in chunks[:-1]]
        assert all(p["object"] == "chat.completion.chunk" and p["model"] == "gpt-bench" for p in parsed)
        assert len(parsed) == 1 + DELTAS + 1 + (1 if include_usage else 0)
        assert parsed[0]["choices"][0]["delta"]["role"] == "assistant"
        texts = [p["choices"][0]["delta"]["content"] for p in parsed[1 : 1 + DELTAS]]
        assert texts == anthropic_texts  # the same N deltas as the Anthropic stream
        assert all(p["choices"][0]["finish_reason"] is None for p in parsed[: 1 + DELTAS])
        finish = parsed[1 + DELTAS]["choices"][0]
        assert finish["finish_reason"] == "stop" and finish["delta"] == {}
        if include_usage:
            last = parsed[-1]
            assert last["choices"] == [] and last["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
            assert last["usage"]["completion_tokens"] > 0
            assert all(p["usage"] is None for p in parsed[:-1])
        else:
            assert all("usage" not in p for p in parsed)


def _pipelined(port: int, bodies: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """POST each body to /v1/messages, pipelined on one keep-alive connection; the responses in order."""
    requests = b"".join(
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (len(b), b) for b in bodies
    )
    got = _Responses()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(requests)
        deadline = time.monotonic() + TIMEOUT_S
        while len(got.done) < len(bodies) and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            got.parser.feed_data(data)
    assert len(got.done) == len(bodies)
    return got.done


def _sse_names(body: bytes) -> list[str]:
    return [event.split("\n", 1)[0].removeprefix("event: ") for event in body.decode()[:-2].split("\n\n")]


OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_failure_mode_answers_529_on_every_fifth_request(upstream_url: str) -> None:
    """``bench-fail-20``: exactly every 5th request (JSON or SSE, one counter) is a 529 overloaded_error."""
    port = int(upstream_url.rsplit(":", 1)[1])
    before = _get_json(upstream_url, "/_bench/failures")["bench-fail-20"]
    json_body = b'{"model":"bench-fail-20","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
    sse_body = b'{"model":"bench-fail-20","stream":true,"max_tokens":8,"messages":[]}'
    bodies = [json_body] * 12 + [sse_body] * 8
    got = _pipelined(port, bodies)
    n0 = before["requests"]
    want = [529 if (n0 + i + 1) % 5 == 0 else 200 for i in range(len(bodies))]
    assert [status for status, _, _ in got] == want
    assert want.count(529) == 4
    for body, (status, headers, answer) in zip(bodies, got, strict=True):
        if status == 529:
            assert headers["content-type"] == "application/json"
            assert json.loads(answer) == OVERLOADED
        elif body is json_body:
            assert json.loads(answer)["type"] == "message"
        else:
            assert headers["content-type"].startswith("text/event-stream")
            names = _sse_names(answer)
            assert len(names) == EVENTS_PER_ANSWER and names[-1] == "message_stop"
    after = _get_json(upstream_url, "/_bench/failures")["bench-fail-20"]
    assert after == {"requests": n0 + 20, "failed": before["failed"] + 4}


def test_inband_failure_mode_emits_an_error_event(upstream_url: str) -> None:
    """``bench-fail-20-inband``: every 5th stream is HTTP 200 with message_start, then an ``error`` event."""
    port = int(upstream_url.rsplit(":", 1)[1])
    before = _get_json(upstream_url, "/_bench/failures")["bench-fail-20-inband"]
    sse_body = b'{"model":"bench-fail-20-inband","stream":true,"max_tokens":8,"messages":[]}'
    json_body = b'{"model":"bench-fail-20-inband","max_tokens":8,"messages":[]}'
    bodies = [sse_body] * 10 + [json_body] * 5
    got = _pipelined(port, bodies)
    n0 = before["requests"]
    fails = [(n0 + i + 1) % 5 == 0 for i in range(len(bodies))]
    assert fails.count(True) == 3
    for body, fail, (status, headers, answer) in zip(bodies, fails, got, strict=True):
        if body is json_body:  # no stream to fail in: the plain 529
            assert status == (529 if fail else 200)
            if fail:
                assert json.loads(answer) == OVERLOADED
            continue
        assert status == 200
        assert headers["content-type"].startswith("text/event-stream")
        names = _sse_names(answer)
        if not fail:
            assert len(names) == EVENTS_PER_ANSWER and names[-1] == "message_stop"
            continue
        assert names == ["message_start", "error"]
        error_event = answer.decode()[:-2].split("\n\n")[1]
        assert json.loads(error_event.split("\n")[1].removeprefix("data: ")) == OVERLOADED
    after = _get_json(upstream_url, "/_bench/failures")["bench-fail-20-inband"]
    assert after == {"requests": n0 + 15, "failed": before["failed"] + 3}


ADMISSION_SMOKE = """
import json, tempfile
from pathlib import Path
from bench import admission as a
from bench.loadgen import LoadResult
from sidecar.admission.keys import KeyStore
from sidecar.config.load import load_config

out = {}
with tempfile.TemporaryDirectory() as tmp:
    for v in a.VARIANTS:
        path = Path(tmp) / f"{v.key}.yaml"
        path.write_text(a.admission_config("http://127.0.0.1:9", v.key, "redis://127.0.0.1:7/0"))
        config = load_config(path)
        if config.admission is None:
            out[v.key] = None
            continue
        adm = config.admission
        record = KeyStore.from_config(adm).authenticate({"x-api-key": a.CLIENT_KEY})
        out[v.key] = {
            "backend": type(adm.backend).__name__,
            "key": record.name,
            "limits": {k: getattr(record.limits, k) for k in a.LIMITS},
        }

# The table from made-up runs: off 1.0 ms / 1000 req/s / 2.0 ms, memory +0.25 ms, x0.8, +0.5 ms.
def run(mode, p50, rps, cpu):
    r = LoadResult(mode=mode, url="-", connections=1, max_requests=1, duration_limit_s=1.0, ok=100)
    r.requests_per_s = rps
    (r.ttft_ms if mode == "sse" else r.latency_ms)["p50"] = p50
    return a.AdmRun(r, proxy_cpu_s=cpu)

phase = a.AdmissionPhase(duration=1.0, repeat=1, variants=a.VARIANTS[:2])
phase.outcome = a.AdmissionOutcome(phase.variants)
for which, p50, rps, sse, cpu in (("direct", 0.1, 9000.0, 0.4, None), ("off", 1.0, 1000.0, 2.0, 0.05),
                                  ("memory", 1.25, 800.0, 2.5, 0.06)):
    phase.outcome.add(which, "json_c1", run("json", p50, 0.0, cpu))
    phase.outcome.add(which, "json_c32", run("json", 30.0, rps, cpu))
    phase.outcome.add(which, "sse_c1", run("sse", sse, 0.0, cpu))
out["rows"] = phase.to_dict()["rows"]
out["table"] = a.render_admission(phase)
print(json.dumps(out, default=str))
"""


def test_admission_configs_and_table() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ADMISSION_SMOKE], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["off"] is None
    high = {"requests_per_minute": 100_000_000, "tokens_per_minute": 10_000_000_000, "concurrency": 10_000}
    assert out["memory"] == {"backend": "MemoryBackend", "key": "bench-client", "limits": high}
    assert out["redis"] == {"backend": "RedisBackend", "key": "bench-client", "limits": high}
    rows = {r["variant"]: r["scenarios"] for r in out["rows"]}
    assert list(rows) == ["direct", "off", "memory"]
    assert rows["memory"]["json_c1"]["vs_off"] == pytest.approx(0.25)
    assert rows["memory"]["json_c32"]["vs_off"] == pytest.approx(0.8)
    assert rows["memory"]["sse_c1"]["vs_off"] == pytest.approx(0.5)
    assert rows["memory"]["json_c32"]["added_cpu_us_per_request"] == pytest.approx(100.0)
    assert (
        rows["off"]["json_c1"]["vs_off"] is None and rows["direct"]["json_c32"]["cpu_us_per_request"] is None
    )
    table = out["table"]
    assert "admission, memory" in table and "+0.250" in table and "0.800" in table and "+100" in table


# -- python -m bench itself, in small sizes: the rows and the JSON results, no figures asserted ----------
BENCH_TIMEOUT_S = 240
SMALL = (
    *("--quick", "--duration", "0.3", "--warmup", "0.1", "--cancel-probes", "1"),
    *("--no-grpc", "--no-openai", "--no-failures", "--no-admission"),
)
MAIN_ROWS = ("JSON c=32", "JSON c=1", "SSE c=32", "SSE c=1")
PROXY_ROWS = ("nginx", "stand-in", "sidecar")


def _bench(out: Path, *args: str) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *SMALL, "--out", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert isinstance(doc, dict)
    return done.stdout, doc


def _table_rows(stdout: str) -> list[list[str]]:
    """The main table's rows, split on runs of two or more spaces."""
    lines = stdout.split("results (medians over repetitions):", 1)[1].split("\n\n", 2)[1].splitlines()
    assert lines[0].startswith("scenario") and set(lines[1]) <= {"-", " "}
    return [re.split(r" {2,}", line) for line in lines[2:]]


def _number(v: object) -> bool:
    return isinstance(v, float | int) and not isinstance(v, bool) and v == v  # not NaN


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    assert shutil.which("nginx"), "nginx is not installed (make nginx installs Debian's package)"
    return _bench(tmp_path_factory.mktemp("bench") / "latest.json")


def test_bench_measures_direct_nginx_standin_and_sidecar(bench_run: tuple[str, dict[str, Any]]) -> None:
    stdout, doc = bench_run
    assert doc["nginx"]["skipped"] is None and "proxy_pass http://fake;" in doc["nginx"]["config"]
    assert "proxy_buffering off;" in doc["nginx"]["config"] and "keepalive 64;" in doc["nginx"]["config"]
    assert doc["standin_proxy"]["skipped"] is None and doc["standin_proxy"]["stack"] == "uvicorn"
    assert "(uvicorn raw ASGI + aiohttp, no sidecar logic)" in stdout
    assert doc["config"]["sse_deltas"] == 50 and doc["config"]["sse_events_per_answer"] == 56
    assert "nginx:    nginx/" in stdout
    assert doc["sidecar"] == f"sidecar (python -m sidecar, metrics on, {sidecar_build()})"
    rows = {(r[0], r[2]): r for r in _table_rows(stdout)}
    assert set(rows) == {(label, proxy) for label in MAIN_ROWS for proxy in PROXY_ROWS}
    for (label, proxy), row in rows.items():
        assert len(row) == (11 if proxy == "sidecar" else 9), row  # no target and result but the sidecar's
        vs_direct, vs_nginx, cpu = row[5], row[6], row[-2]
        assert re.fullmatch(r"[+-]\d+\.\d{3} ms" if "c=1" in label else r"\d+\.\d{3}", vs_direct), row
        if proxy == "nginx":
            assert "yardstick" in vs_nginx
        else:
            assert re.fullmatch(r"nginx [+-]\d+\.\d{3} ms" if "c=1" in label else r"\d+\.\d{3}", vs_nginx), (
                row
            )
        assert re.fullmatch(r"[\d,]+( \([\d,]+\.\d/ev\))?" if "SSE" in label else r"[\d,]+", cpu), row

    by_key = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(by_key) == ["json_c32", "json_c1", "sse_c32", "sse_c1"]
    for key, s in by_key.items():
        assert set(s["targets"]) == {"nginx", "standin", "sidecar"}
        assert {k: len(v) for k, v in s["runs"].items()} == {"direct": 1, "via": 1, "nginx": 1, "standin": 1}
        assert _number(s["direct"]) and _number(s["nginx"]) and _number(s["vs_nginx"])
        for name, t in s["targets"].items():
            assert t["errors"] == 0, (key, name)
            for field in ("via", "vs_direct", "vs_nginx", "cpu_us_per_request"):
                assert _number(t[field]), (key, name, field, t[field])
            assert _number(t["cpu_us_per_event"]) == key.startswith("sse"), (key, name)
            assert _number(t["nginx_added_ms"]) == key.endswith("_c1"), (key, name)
        if s["kind"] == "ratio":
            assert s["targets"]["nginx"]["vs_nginx"] == pytest.approx(1.0)
        else:  # latency rows: the proxy's added ms over nginx, and nginx's own added ms beside it
            nginx = s["targets"]["nginx"]
            assert s["targets"]["nginx"]["vs_nginx"] == pytest.approx(0.0)
            assert s["nginx_added_ms"] == pytest.approx(nginx["vs_direct"])

    # Memory and start-up per proxy: each started at least once, measured from /proc.
    assert set(doc["footprints"]) == {"anthropic", "nginx", "standin"}
    for name, f in doc["footprints"].items():
        assert f["starts"] >= 1 and 0 < f["ready_s"] < 30, (name, f)
        assert 0 < f["idle_rss_mb"] <= f["peak_rss_mb"], (name, f)
    assert "memory and start-up per proxy" in stdout


def test_bench_without_nginx_says_so(tmp_path: Path) -> None:
    stdout, doc = _bench(tmp_path / "latest.json", "--no-nginx")
    assert doc["nginx"]["skipped"] == "--no-nginx"
    assert "nginx:    SKIPPED (--no-nginx)" in stdout
    assert "nginx rows and ratios to nginx SKIPPED: --no-nginx" in stdout
    proxies = {r[2] for r in _table_rows(stdout)}
    assert proxies == {"stand-in", "sidecar"}
    for s in doc["scenarios"]:
        assert set(s["targets"]) == {"standin", "sidecar"} and s["runs"]["nginx"] == []
        assert s["nginx"] is None and s["vs_nginx"] is None
        assert _number(s["targets"]["standin"]["vs_direct"])
