"""The coverage-guided pass (atheris, libFuzzer's engine for Python): the request validator, the
SSE splitter and the gRPC door's proto converters, fed bytes that atheris mutates toward new
coverage of the instrumented sidecar modules. Counted apart from the socket-level fuzzers.

``python -m reliability.coverage_fuzz [--merge] TARGET RUNS`` runs one target; the ``coverage``
campaign runs each. atheris takes a process over and exits when done, so the fuzzing itself runs
in a child process (``--engine``), with two corpus directories: a temporary one, where the run's
seeds and new finds go, and ``reliability/corpus/TARGET`` (kept in the repo), which it only reads,
so a run starts from the coverage earlier runs found. ``--merge`` then minimises both into the
kept corpus (libFuzzer's ``-merge=1`` into an empty directory: the smallest inputs that keep every
feature), replacing what was there; commit the result.
A target fails on any exception other than the bad-input ones the doors map to a 4xx or an
INVALID_ARGUMENT: ``SidecarError`` with a 4xx status, the JSON errors of
``sidecar.core.jsonbytes.BAD_JSON``, protobuf's ``DecodeError``; and on broken invariants (the
splitter must give back exactly the bytes it was fed, event by event, in any chunking).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = ("validate", "sse", "convert")
ROOT = Path(__file__).resolve().parent.parent
# The kept, minimised corpus: one directory per target, read by every run, rewritten by --merge.
CORPUS = Path(__file__).resolve().parent / "corpus"
# libFuzzer flags of every run: no input longer than 4 KiB (the kept corpus stays small), and an
# input that runs for 10 s is a hang.
FLAGS = ("-max_len=4096", "-timeout=10")


def _from_source() -> None:
    """Load the sidecar's modules from their Python source even where a compiled one sits beside
    it (the native build, ``setup.py``): atheris instruments bytecode, and a compiled module has
    none, so its branches would be invisible to the fuzzer. Call before anything imports them."""
    from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader
    from importlib.util import find_spec

    spec = find_spec("sidecar")  # a top-level package: found, not imported
    assert spec is not None and spec.submodule_search_locations is not None
    for top in spec.submodule_search_locations:
        for folder in [Path(top), *(p for p in Path(top).rglob("*") if p.is_dir())]:
            sys.path_importer_cache[str(folder)] = FileFinder(
                str(folder), (SourceFileLoader, SOURCE_SUFFIXES)
            )


def _target(name: str) -> Any:
    import atheris

    _from_source()
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


def _engine(name: str, args: list[str]) -> None:
    """The child: atheris over target ``name`` with libFuzzer's ``args`` (flags, corpus dirs)."""
    import atheris

    one = _target(name)
    # libFuzzer runs argv[0] through the shell for a merge's inner pass: this very command.
    command = shlex.join([sys.executable, "-m", "reliability.coverage_fuzz", "--engine", name])
    atheris.Setup([command, *args], one)
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


def _engine_run(name: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reliability.coverage_fuzz", "--engine", name, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT)


def _size(directory: Path) -> tuple[int, int]:
    files = [f for f in directory.iterdir() if f.is_file()] if directory.is_dir() else []
    return len(files), sum(f.stat().st_size for f in files)


def _merge(name: str, kept: Path, work: Path) -> tuple[str, str | None]:
    """Minimise ``kept`` and ``work`` into ``kept``: (a report line, a violation or None)."""
    before = _size(kept)
    kept.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"sidecar-coverage-{name}-merged-") as merged:
        proc = _engine_run(name, ["-merge=1", *FLAGS, merged, str(kept), str(work)])
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.splitlines()[-25:])
            return "", f"coverage {name} merge failed (exit {proc.returncode}):\n{tail}"
        # libFuzzer names each input by the SHA-1 of its bytes: unchanged inputs keep their names.
        chosen = {f.name for f in Path(merged).iterdir()}
        for old in kept.iterdir():
            if old.name not in chosen:
                old.unlink()
        for new in chosen - {f.name for f in kept.iterdir()}:
            shutil.copyfile(Path(merged) / new, kept / new)
    after = _size(kept)
    return (
        f"    merged into {kept.relative_to(ROOT) if kept.is_relative_to(ROOT) else kept}: "
        f"{after[0]} inputs, {after[1] / 1024:.0f} KiB (was {before[0]}, {before[1] / 1024:.0f} KiB)"
    ), None


def run_target(
    name: str, runs: int, *, merge: bool = False, corpus: Path = CORPUS
) -> tuple[list[str], list[str]]:
    """One target, ``runs`` inputs, from its seeds and ``corpus/name``; ``merge``: then minimise
    the run's finds into ``corpus/name``."""
    kept = corpus / name
    report, violations = [], []
    with tempfile.TemporaryDirectory(prefix=f"sidecar-coverage-{name}-") as work:
        for i, seed in enumerate(_seeds(name)):  # known-good shapes to mutate from
            (Path(work) / f"seed{i}").write_bytes(seed)
        dirs = [work, str(kept)] if kept.is_dir() else [work]
        started = time.perf_counter()
        proc = _engine_run(name, [f"-runs={runs}", *FLAGS, *dirs])
        took = time.perf_counter() - started
        tail = [line for line in proc.stderr.splitlines() if line.startswith(("#", "Done", "=="))]
        cov = next((line.split("cov: ")[1].split()[0] for line in reversed(tail) if "cov: " in line), "?")
        count, size = _size(kept)
        report.append(
            f"  coverage {name}: {runs:,} inputs in {took:.0f} s, coverage {cov} edges, exit {proc.returncode}"
            f" (from {count} kept inputs, {size / 1024:.0f} KiB)"
        )
        if proc.returncode != 0:
            crash = "\n".join(proc.stderr.splitlines()[-25:])
            violations.append(f"coverage {name} failed (exit {proc.returncode}):\n{crash}")
        elif merge:
            line, failure = _merge(name, kept, Path(work))
            report.extend([line] if line else [])
            violations.extend([failure] if failure else [])
    return report, violations


def run_all(runs: int, *, merge: bool = False, corpus: Path = CORPUS) -> tuple[list[str], list[str]]:
    """Each target in its own process: ``runs`` inputs each (``merge``: see ``run_target``)."""
    report = ["coverage: atheris over the validator, the SSE splitter and the proto converters"]
    violations: list[str] = []
    for name in TARGETS:
        lines, found = run_target(name, runs, merge=merge, corpus=corpus)
        report.extend(lines)
        violations.extend(found)
    return report, violations


def main(argv: list[str]) -> int:
    if argv[:1] == ["--engine"]:
        _engine(argv[1], argv[2:])
        return 0
    merge = "--merge" in argv
    args = [a for a in argv if a != "--merge"]
    if len(args) != 2 or args[0] not in TARGETS or not args[1].isdigit():
        print(
            f"usage: python -m reliability.coverage_fuzz [--merge] {{{','.join(TARGETS)}}} RUNS",
            file=sys.stderr,
        )
        return 2
    report, violations = run_target(args[0], int(args[1]), merge=merge)
    for line in report:
        print(line)
    for v in violations:
        print(f"  VIOLATION {v}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
