"""The coverage-guided pass (atheris, libFuzzer's engine for Python): the request validator, the
SSE splitter and the gRPC door's proto converters, fed bytes that atheris mutates toward new
coverage of the instrumented sidecar modules. Counted apart from the socket-level fuzzers.

``python -m reliability.coverage_fuzz TARGET RUNS`` runs one target in its own process (atheris
takes the process over and exits when done); the ``coverage`` campaign runs each target that way.
A target fails on any exception other than the bad-input ones the doors map to a 4xx or an
INVALID_ARGUMENT: ``SidecarError`` with a 4xx status, the JSON errors of
``sidecar.core.jsonbytes.BAD_JSON``, protobuf's ``DecodeError``; and on broken invariants (the
splitter must give back exactly the bytes it was fed, event by event, in any chunking).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = ("validate", "sse", "convert")


def _target(name: str) -> Any:
    import atheris

    with atheris.instrument_imports(include=["sidecar"]):
        import msgspec
        from google.protobuf.message import DecodeError

        from sidecar.core.jsonbytes import BAD_JSON
        from sidecar.core.sse import SSESplitter
        from sidecar.core.validate import validate_count_tokens, validate_messages
        from sidecar.errors import SidecarError
        from sidecar.grpc import convert
        from sidecar.messages.v1 import messages_pb2 as pb

    def bad_input(exc: BaseException) -> bool:
        if isinstance(exc, SidecarError):
            return 400 <= exc.status < 500
        return isinstance(exc, (*BAD_JSON, DecodeError))

    if name == "validate":

        def one(data: bytes) -> None:
            # The bytes are the body; their length picks the endpoint and the API version.
            version = (None, "2023-06-01", "2023-01-01")[len(data) % 3]
            try:
                body = msgspec.json.decode(data)
                (validate_count_tokens if len(data) % 2 else validate_messages)(body, version)
            except BaseException as exc:
                if not bad_input(exc):
                    raise

    elif name == "sse":

        def one(data: bytes) -> None:
            fdp = atheris.FuzzedDataProvider(data)
            cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 4096))
            stream = fdp.ConsumeBytes(fdp.remaining_bytes())
            splitter = SSESplitter()
            events = []
            last = 0
            for cut in [*cuts, len(stream)]:
                cut = min(cut, len(stream))
                if cut < last:
                    continue
                events.extend(splitter.feed(stream[last:cut]))
                last = cut
            relayed = b"".join(e.raw or b"" for e in events)
            # Whole events come back byte for byte, in order; only an unterminated tail is held.
            if not stream.startswith(relayed):
                raise AssertionError("the splitter changed or reordered bytes")
            for event in events:
                event.data  # noqa: B018 - decoding must never raise
            splitter.flush()

    elif name == "convert":

        def one(data: bytes) -> None:
            message = pb.CreateMessageRequest()
            try:
                message.ParseFromString(data)
                body = convert.request_from_proto(message)
                convert.request_to_proto(body)
            except BaseException as exc:
                if not bad_input(exc):
                    raise

    else:
        raise SystemExit(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
    return one


def main() -> None:
    import atheris

    name, runs = sys.argv[1], int(sys.argv[2])
    one = _target(name)
    corpus = Path(tempfile.mkdtemp(prefix=f"sidecar-coverage-{name}-"))
    for i, seed in enumerate(_seeds(name)):  # known-good shapes to mutate from
        (corpus / f"seed{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=4096", "-timeout=10", str(corpus)], one)
    atheris.Fuzz()


def _seeds(name: str) -> list[bytes]:
    bodies = [
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
            ],
            "tools": [{"name": "mcp__s__f", "input_schema": {"type": "object"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stream": True,
        },
    ]
    if name == "validate":
        return [json.dumps(b).encode() for b in bodies]
    if name == "sse":
        return [
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0}\n\n'
            b"event: crlf\r\ndata: {}\r\n\r\n: comment\n\n"
        ]
    from sidecar.grpc import convert

    return [convert.request_to_proto(b).SerializeToString() for b in bodies]


def run_all(runs: int) -> tuple[list[str], list[str]]:
    """Each target in its own process: ``runs`` inputs each."""
    report, violations = [], []
    for name in TARGETS:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "reliability.coverage_fuzz", name, str(runs)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        took = time.perf_counter() - started
        tail = [line for line in proc.stderr.splitlines() if line.startswith(("#", "Done", "=="))]
        cov = next((line.split("cov: ")[1].split()[0] for line in reversed(tail) if "cov: " in line), "?")
        report.append(
            f"  coverage {name}: {runs:,} inputs in {took:.0f} s, coverage {cov} edges, exit {proc.returncode}"
        )
        if proc.returncode != 0:
            crash = "\n".join(proc.stderr.splitlines()[-25:])
            violations.append(f"coverage {name} failed (exit {proc.returncode}):\n{crash}")
    return [
        "coverage: atheris over the validator, the SSE splitter and the proto converters",
        *report,
    ], violations


if __name__ == "__main__":
    main()
