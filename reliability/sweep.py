"""The security sweep: what the sidecar writes and forwards never holds a key, a client's bytes
never become a header of their own, the admin listener serves nothing but health and metrics,
and an open listener without a key store is refused at start.

It runs its own sidecar with everything that writes something on: admission (client keys), an
Anthropic upstream with its own key (``fault_upstream.FaultUpstream``, faults off, recording the
headers of every request it receives), the mock upstream, the request log, metrics, and traces
exported to the OTLP collector stub (``otlp_stub``). Then:

1. Traffic over both doors, JSON and streaming, with good keys, wrong keys (``x-api-key`` and
   ``Authorization: Bearer``), and model names carrying CR/LF and an injected header line
   (``...\\r\\nx-injected-sweep: 1``), to the fake upstream and to the mock. Raw requests also
   carry CR/LF (an injected header line), a bare CR, an obs-fold continuation line, non-ASCII
   bytes or a NUL inside header values: over HTTP as raw HTTP/1.1, over gRPC as raw HTTP/2
   frames (``raw_grpc_call``: grpcio's client refuses such metadata); each such call must end
   (a status, a reset or a refused connection) within 10 s.
2. Every artefact is grepped for every key (the client keys, wrong keys, the upstream's key):
   the sidecar's log with its request log, the exported spans, ``/metrics``, and every answer
   the clients got (bodies, and gRPC trailers). The upstream's own key may appear only in the
   headers the upstream received (where it belongs), and a client key never does.
3. Injection: no header the fake upstream received is named ``x-injected-sweep`` or carries
   CR, LF or NUL, and it could parse every request (``protocol_errors == 0``); ``/metrics`` holds
   no ``x-injected-sweep`` and no CR.
4. The admin listener: every path of ``ADMIN_PATHS`` with every method of ``ADMIN_METHODS``
   answers 404 or 405 with at most a one-line plain-text hint, except GET/HEAD of ``/healthz``,
   ``/readyz`` and ``/metrics``.
5. ``python -m sidecar --host 0.0.0.0`` (no key store) and a config file with
   ``listeners.host: 0.0.0.0`` and no ``admission`` both exit 1 at start, saying why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from grpc import aio as grpc_aio

from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from .fault_upstream import MODEL, FaultUpstream
from .otlp_stub import OtlpStub
from .sidecar_process import SECRETS, SidecarProcess

KEYS = ["sk-client-sweep-0", "sk-client-sweep-1"]
WRONG_KEYS = ["sk-wrong-sweep-x", "sk-ant-api03-sweepwrongkeyAAAA"]
UPSTREAM_KEY = "sk-fault-a"
ALL_SECRETS = (*SECRETS, *KEYS, *WRONG_KEYS)
INJECTED = "x-injected-sweep"
CRLF_MODELS = [
    f"{MODEL}\r\n{INJECTED}: 1",
    f"claude-mock\r\n{INJECTED}: 1",
    f"{MODEL}\n{INJECTED}: 2",
    f"claude-mock\r{INJECTED}: 3",
]
ADMIN_PATHS = [
    "/",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/messages/batches",
    "/debug",
    "/debug/pprof",
    "/debug/vars",
    "/config",
    "/config.yaml",
    "/admin",
    "/env",
    "/.env",
    "/stats",
    "/status",
    "/server-status",
    "/reload",
    "/quitquitquit",
    "/shutdown",
    "/logging",
    "/runtime",
    "/metrics/../config",
    "/%2e%2e/config",
    "//metrics",
    "/metrics/",
    "/metrics?format=json",
    "/healthz/../config",
    "/HEALTHZ",
]
ADMIN_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
ADMIN_SERVED = {"/healthz", "/readyz", "/metrics", "/metrics?format=json"}
MAX_HINT_BYTES = 100


def config(url: str, otlp: str, admin_port: int, http_port: int, grpc_port: int) -> str:
    keys = "\n".join(
        f"    - {{name: sweep-{i}, sha256: {hashlib.sha256(k.encode()).hexdigest()}, tier: t}}"
        for i, k in enumerate(KEYS)
    )
    return f"""
listeners: {{http: {{port: {http_port}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
upstreams:
  a: {{provider: anthropic, base_url: "{url}", api_key: {UPSTREAM_KEY}, pacing: {{enabled: false}}}}
  m: {{provider: mock, words: 6}}
routes:
  - {{match: "{MODEL}*", upstream: a}}
  - {{match: "*", upstream: m}}
admission:
  tiers:
    t: {{concurrency: 100}}
  keys:
{keys}
telemetry:
  request_log: true
  traces: {{endpoint: "{otlp}", service_name: sweep}}
"""


def secrets_in(what: str, data: bytes | str, secrets: tuple[str, ...] = ALL_SECRETS) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [f"the secret {s!r} appears in {what}" for s in secrets if s.encode() in raw]


def header_problems(headers_seen: list[list[tuple[bytes, bytes]]]) -> list[str]:
    """Injected or malformed headers among those an upstream received, and client keys."""
    problems: Counter[str] = Counter()
    for headers in headers_seen:
        for name, value in headers:
            if name.lower() == INJECTED.encode():
                problems[f"the upstream received a header {INJECTED!r} (injected)"] += 1
            if any(c in value for c in (b"\r", b"\n", b"\x00")) or any(
                c in name for c in (b"\r", b"\n", b"\x00")
            ):
                problems[f"the upstream received CR, LF or NUL in header {name!r}"] += 1
            for key in (*KEYS, *WRONG_KEYS):
                if key.encode() in value:
                    problems[f"a client key reached the upstream in header {name!r}"] += 1
    return [f"{p} (x{n})" for p, n in problems.items()]


def admin_problem(path: str, method: str, status: int, ctype: str, body: bytes) -> str | None:
    """None when the admin listener's answer to ``method path`` is acceptable."""
    if path in ADMIN_SERVED and method in ("GET", "HEAD"):
        return None if status == 200 else f"{method} {path}: {status}, expected 200"
    if status not in (404, 405):
        return f"{method} {path}: {status} (only 404 or 405 is acceptable)"
    if len(body) > MAX_HINT_BYTES or (body and not ctype.startswith("text/plain")):
        return f"{method} {path}: {status} with {len(body)} bytes of {ctype or 'no type'}: {body[:80]!r}"
    return None


async def _raw_http(port: int, head: bytes, body: bytes) -> bytes:
    """One request on its own connection, as bytes; the answer as bytes (until close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 20), 10)
    finally:
        writer.close()


def _hpack_int(n: int, prefix_bits: int, first: int = 0) -> bytes:
    top = (1 << prefix_bits) - 1
    if n < top:
        return bytes([first | n])
    out = [first | top]
    n -= top
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _hpack_literal(name: bytes, value: bytes) -> bytes:
    """A header as HPACK's literal without indexing, new name, no Huffman: any bytes go."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


async def raw_grpc_call(port: int, path: str, headers: list[tuple[bytes, bytes]], message: bytes) -> str:
    """One gRPC call written as raw HTTP/2 frames, so metadata values grpcio's client refuses
    (CR, LF, non-ASCII bytes) are sent as they are. Returns how the stream ended: ``end`` (a
    frame with END_STREAM: the status came), ``reset`` (RST_STREAM), ``goaway`` or ``closed``
    (the connection), or ``timeout``. The message goes in one DATA frame: keep it within
    HTTP/2's default frame size (16 KB)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = b"".join(
        _hpack_literal(n, v)
        for n, v in [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"127.0.0.1"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *headers,
        ]
    )
    writer.write(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + _h2_frame(4, 0, 0, b"")  # SETTINGS
        + _h2_frame(1, 0x4, 1, block)  # HEADERS, END_HEADERS
        + _h2_frame(0, 0x1, 1, b"\x00" + len(message).to_bytes(4, "big") + message)  # DATA, END_STREAM
    )
    try:
        async with asyncio.timeout(10):
            while True:
                head = await reader.readexactly(9)
                length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                await reader.readexactly(length)
                if kind == 4 and not flags & 0x1:
                    writer.write(_h2_frame(4, 0x1, 0, b""))  # SETTINGS ACK
                elif kind == 7:
                    return "goaway"
                elif stream == 1 and kind == 3:
                    return "reset"
                elif stream == 1 and kind in (0, 1) and flags & 0x1:
                    return "end"
    except (asyncio.IncompleteReadError, ConnectionError):
        return "closed"
    except TimeoutError:
        return "timeout"
    finally:
        writer.close()


async def _traffic(sidecar: SidecarProcess, answers: list[bytes], outcomes: Counter[str]) -> None:
    channel = grpc_aio.insecure_channel(sidecar.grpc_target)
    stub = pb_grpc.MessagesStub(channel)
    plain = {"max_tokens": 16, "messages": [{"role": "user", "content": "sweep"}]}
    models = [MODEL, "claude-mock", *CRLF_MODELS]
    credentials: list[dict[str, str]] = [
        {"x-api-key": KEYS[0]},
        {"authorization": f"Bearer {KEYS[1]}"},
        {"x-api-key": WRONG_KEYS[0]},
        {"authorization": f"Bearer {WRONG_KEYS[1]}"},
        {"x-api-key": WRONG_KEYS[1], "authorization": f"Bearer {WRONG_KEYS[0]}"},
        {},
    ]
    async with httpx.AsyncClient(base_url=sidecar.http_url, timeout=30) as client:
        for i, model in enumerate(models):
            for creds in credentials:
                for stream in (False, True):
                    body = {**plain, "model": model, "stream": stream, "metadata": {"user_id": f"sw-{i}"}}
                    r = await client.post(
                        "/v1/messages", json=body, headers={**creds, "anthropic-version": "2023-06-01"}
                    )
                    answers.append(r.content + repr(r.headers.raw).encode())
                    outcomes[f"http {r.status_code}"] += 1
                    md = tuple(creds.items())
                    request = convert.request_to_proto(body)
                    try:
                        if stream:
                            async for event in stub.StreamMessage(request, metadata=md, timeout=30):
                                answers.append(event.SerializeToString())
                        else:
                            answers.append(
                                (
                                    await stub.CreateMessage(request, metadata=md, timeout=30)
                                ).SerializeToString()
                            )
                        outcomes["grpc OK"] += 1
                    except grpc_aio.AioRpcError as exc:
                        outcomes[f"grpc {exc.code().name}"] += 1
                        answers.append(
                            f"{exc.details()} {exc.trailing_metadata()} {exc.initial_metadata()}".encode()
                        )
            r = await client.post(
                "/v1/messages/count_tokens",
                json={"model": model, "messages": plain["messages"]},
                headers={"x-api-key": WRONG_KEYS[0]},
            )
            answers.append(r.content)
            outcomes[f"http count_tokens {r.status_code}"] += 1
        # Header values with a bare CR, an obs-fold continuation line, a NUL (raw bytes: an HTTP
        # client library would refuse to send them).
        payload = json.dumps({**plain, "model": MODEL, "metadata": {"user_id": "sw-raw"}}).encode()
        for bad in (
            f"anthropic-beta: a\r{INJECTED}: 1\r\n".encode(),
            f"anthropic-beta: a\r\n {INJECTED}: 2\r\n".encode(),
            f"anthropic-beta: a\r\n\t{INJECTED}: 3\r\n".encode(),
            b"anthropic-beta: a\x00b\r\n",
            f"x-api-key: {KEYS[0]}\r{INJECTED}: 4\r\n".encode(),
        ):
            head = (
                b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"x-api-key: {KEYS[0]}\r\n".encode()
                + bad
                + f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            )
            try:
                raw = await _raw_http(sidecar.http_port, head, payload)
            except (OSError, TimeoutError) as exc:
                raw = f"{type(exc).__name__}".encode()
            answers.append(raw)
            outcomes[f"raw http {raw[9:12].decode(errors='replace') or 'closed'}"] += 1
    # The same over gRPC, as raw HTTP/2 (grpcio's client refuses such metadata).
    message = convert.request_to_proto({**plain, "model": MODEL, "metadata": {"user_id": "sw-h2"}})
    for name, value in (
        (b"anthropic-beta", f"a\r\n{INJECTED}: 5".encode()),
        (b"anthropic-beta", f"a\n{INJECTED}: 6".encode()),
        (b"anthropic-version", b"2023-06-01\r"),
        (b"anthropic-beta", "caf\u00e9-\u2603".encode()),
        (b"x-api-key", f"{KEYS[0]}\r\n{INJECTED}: 7".encode()),
        (b"anthropic-beta", b"a\x00b"),
    ):
        ended = await raw_grpc_call(
            sidecar.grpc_port,
            "/sidecar.messages.v1.Messages/CreateMessage",
            [(b"x-api-key", KEYS[0].encode()), (name, value)],
            message.SerializeToString(),
        )
        outcomes[f"raw grpc {ended}"] += 1
    await channel.close(None)


def parse_answer(raw: bytes) -> tuple[int, str, bytes]:
    """(status, content-type, body) of a raw HTTP/1.1 answer (0 when there is none)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return 0, "", raw
    ctype = ""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            ctype = value.strip().decode("latin-1")
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunks, rest = [], body
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size or b"0", 16)
                if not n:
                    break
                chunks.append(rest[:n])
                rest = rest[n + 2 :]
            body = b"".join(chunks)
    return status, ctype, body


async def _admin_probe(port: int) -> tuple[int, list[str]]:
    """Every path with every method, as raw requests (a client library would normalise paths)."""
    problems = []
    probes = 0
    for path in ADMIN_PATHS:
        for method in ADMIN_METHODS:
            probes += 1
            body = b"x" if method in ("POST", "PUT", "PATCH") else b""
            head = f"{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            try:
                raw = await _raw_http(port, head.encode(), body)
            except (OSError, TimeoutError) as exc:
                problems.append(f"{method} {path}: {type(exc).__name__}")
                continue
            status, ctype, content = parse_answer(raw)
            problem = admin_problem(path, method, status, ctype, content)
            if problem is not None:
                problems.append(problem)
            problems += secrets_in(f"the admin answer to {method} {path}", raw)
    return probes, problems


def _open_listener_refused() -> list[str]:
    """The sidecar refuses to start on a non-loopback host without a key store."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        open_config = Path(tmp) / "open.yaml"
        open_config.write_text(
            "listeners: {host: 0.0.0.0, http: {port: 0}, grpc: {enabled: false}}\n"
            "admin: {port: 0}\nupstreams:\n  m: {provider: mock}\nroutes:\n  - {match: '*', upstream: m}\n"
        )
        for argv in (
            ["--host", "0.0.0.0", "--http-port", "0", "--no-grpc"],
            ["--config", str(open_config)],
        ):
            try:
                r = subprocess.run(
                    [sys.executable, "-m", "sidecar", *argv], capture_output=True, text=True, timeout=60
                )
            except subprocess.TimeoutExpired:
                problems.append(f"sidecar {' '.join(argv)}: still running after 60 s (it started)")
                continue
            if r.returncode != 1 or "not loopback" not in r.stderr:
                problems.append(
                    f"sidecar {' '.join(argv)}: exit {r.returncode}, expected 1 with 'not loopback': "
                    f"{r.stderr[-300:]!r}"
                )
    return problems


async def run(_size: int = 1, seed: int = 7) -> tuple[list[str], list[str]]:
    del seed  # the sweep is fixed: every probe, every time
    fake = FaultUpstream(fault_rate=0.0, record_headers=True)
    url = await fake.start()
    collector = OtlpStub()
    otlp = await collector.start()
    answers: list[bytes] = []
    outcomes: Counter[str] = Counter()
    violations: list[str] = []
    try:
        async with SidecarProcess(lambda a, h, g: config(url, otlp, a, h, g)) as sidecar:
            await _traffic(sidecar, answers, outcomes)
            probes, admin = await _admin_probe(sidecar.admin_port)
            async with httpx.AsyncClient(timeout=10) as client:
                await asyncio.sleep(2.5)  # the last spans' batch
                metrics = (await client.get(sidecar.admin_url + "/metrics")).text
    finally:
        await collector.close()
        await fake.close()
    violations += sidecar.log_problems()
    log = sidecar.log.read_bytes()
    spans = b"".join(collector.kept)
    upstream_headers = repr(fake.headers_seen).encode()
    violations += secrets_in("the sidecar's log (request log included)", log)
    violations += secrets_in("the exported spans", spans)
    violations += secrets_in("/metrics", metrics)
    violations += secrets_in("the answers clients received", b"\n".join(answers))
    violations += header_problems(fake.headers_seen)
    if fake.protocol_errors:
        violations.append(f"the upstream could not parse {fake.protocol_errors} requests from the sidecar")
    hung = sum(n for k, n in outcomes.items() if k.endswith("timeout"))
    if hung:
        violations.append(f"{hung} raw requests got no answer within 10 s")
    if INJECTED in metrics or "\r" in metrics:
        line = next((ln for ln in metrics.splitlines() if INJECTED in ln or "\r" in ln), "")
        violations.append(f"an injected header line reached /metrics: {line[:200]!r}")
    violations += admin
    refused = await asyncio.to_thread(_open_listener_refused)
    violations += refused
    if not collector.spans:
        violations.append("no span reached the OTLP collector (nothing to sweep there)")
    searched = {
        "sidecar log": len(log),
        "spans": len(spans),
        "/metrics": len(metrics),
        "client answers": sum(len(a) for a in answers),
        "upstream headers": len(upstream_headers),
    }
    report = [
        f"sweep: {sum(outcomes.values())} requests ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})",
        f"  {len(ALL_SECRETS)} keys searched for in "
        + ", ".join(f"{k} {v:,} B" for k, v in searched.items())
        + f"; {collector.spans} spans in {collector.requests} exports; upstream requests {len(fake.headers_seen)}",
        f"  admin listener: {probes} probes ({len(ADMIN_PATHS)} paths x {len(ADMIN_METHODS)} methods); "
        f"open listener without keys refused at start: {'yes' if not refused else 'NO'}",
        f"  violations {len(violations)}",
    ]
    return report, violations
