"""The native build (``setup.py``, ``make native``): the modules it lists are the ones compiled,
each loads from its compiled form, and no compiled module is older than its source or left over
from a module no longer listed (Python would load it instead of the source)."""

from __future__ import annotations

import ast
import asyncio
import importlib
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import anthropic
import pytest

from sidecar.core import grammar
from tests.fakes.anthropic_api import FakeAnthropic
from tests.inprocess import running

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sidecar"
SETUP = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
NATIVE: list[str] = SETUP["NATIVE"]
BUILT = PACKAGE / "_native.built"  # `make native` touches it after a build


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def stale_compiled() -> list[str]:
    """Compiled modules whose source changed after the build (``make native`` rebuilds). Their
    code is in the shared runtime library: each module's own extension is a shim that a rebuild
    may leave as it was, so the library's time is the build's."""
    libraries = list(PACKAGE.glob(SETUP["LIBRARY"] + "*.so"))
    built = min((p.stat().st_mtime for p in libraries), default=0.0)
    return [
        str(source.relative_to(ROOT))
        for source in SETUP["compiled_sources"](PACKAGE)
        if source.exists() and source.stat().st_mtime > built
    ]


def test_every_listed_module_is_a_source_of_the_package() -> None:
    assert NATIVE == sorted(set(NATIVE))
    for path in NATIVE:
        assert (ROOT / path).is_file(), path
        assert path.startswith("sidecar/")


def test_only_listed_modules_are_compiled() -> None:
    listed = {ROOT / path for path in NATIVE}
    leftovers = [
        str(source.relative_to(ROOT)) for source in SETUP["compiled_sources"](PACKAGE) if source not in listed
    ]
    assert leftovers == [], "compiled modules setup.py no longer lists: `make native` removes them"


def test_the_listed_modules_load_compiled_in_a_native_build() -> None:
    if not BUILT.exists():
        pytest.skip("a pure build: `make native` (which `make test` runs) has not built the modules")
    for path in NATIVE:
        module = importlib.import_module(_module(path))
        assert str(module.__file__).endswith(".so"), f"{path} loads from {module.__file__}"


def _compiled_sources() -> list[tuple[str, ast.Module]]:
    return [(path, ast.parse((ROOT / path).read_text(), path)) for path in NATIVE]


def test_no_await_in_a_finally_of_a_compiled_module() -> None:
    # mypyc 2.4.1: a compiled coroutine that awaits inside `finally`, called while its caller
    # handles an exception, raises that exception again when the finally ends (even when its
    # own try raised nothing). Cleanup that awaits goes in `except BaseException: ...; raise`
    # and after the try instead.
    found = [
        f"{path}:{node.lineno}"
        for path, tree in _compiled_sources()
        for block in ast.walk(tree)
        if isinstance(block, ast.Try)
        for stmt in block.finalbody
        for node in ast.walk(stmt)
        if isinstance(node, (ast.Await, ast.AsyncWith, ast.AsyncFor))
    ]
    assert found == []


def test_an_except_name_keeps_one_type_in_a_compiled_function() -> None:
    # mypyc gives a variable one type: `except A as exc` then `except B as exc` in one function
    # makes the second assignment a TypeError when B is not an A.
    found = []
    for path, tree in _compiled_sources():
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kinds: dict[str, set[str]] = {}
                for node in ast.walk(fn):
                    if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                        kinds.setdefault(node.name, set()).add(ast.unparse(node.type))
                found += [
                    f"{path}:{fn.lineno} {fn.name}: {n}" for n, types in kinds.items() if len(types) > 1
                ]
    assert found == []


async def test_a_request_runs_no_interpreted_sidecar_code_in_a_native_build(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compiled build's point: a JSON and a streamed request through the HTTP door to an
    # Anthropic upstream, with metrics and pacing on, run no sidecar function interpreted. Each
    # call from compiled into interpreted code cost more than the function itself (measured:
    # compiling the five modules such calls went to took a JSON request from 63.5 to 52 µs).
    if not BUILT.exists():
        pytest.skip("a pure build: `make native` (which `make test` runs) has not built the modules")
    config = {
        "upstreams": {
            "a": {
                "provider": "anthropic",
                "base_url": fake_anthropic.base_url,
                "api_key": "sk-ant-test",
                "pacing": {"enabled": True},
            }
        },
        "routes": [{"match": "*", "upstream": "a"}],
        "telemetry": {"metrics": True},
    }
    ran: Counter[str] = Counter()
    # The tests' stream-grammar check (interpreted, off in production) stays out of this one.
    monkeypatch.setattr(grammar, "CHECK_LOG", None)

    # Only the requests' work counts: what runs in a task that was there before them (the
    # batch runner's polling, this test's own task) is not theirs.
    background: set[asyncio.Task[Any]] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call" or asyncio.current_task() in background:
            return
        code = frame.f_code
        if code.co_filename.startswith(str(PACKAGE)):
            ran[f"{Path(code.co_filename).relative_to(ROOT)}:{code.co_firstlineno} {code.co_qualname}"] += 1
        elif code.co_filename == "<string>":  # a method a dataclass generated
            owner = type(frame.f_locals.get("self"))
            if owner.__module__.startswith("sidecar."):
                ran[f"{owner.__module__}.{owner.__qualname__}.{code.co_name} (generated)"] += 1

    async with running(config) as runtime:
        client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{runtime.http_port}", api_key="sk-x")
        ask: dict[str, Any] = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        await client.messages.create(**ask)  # the first request of a kind warms caches
        async with client.messages.stream(**ask) as stream:
            await stream.get_final_message()
        background.update(asyncio.all_tasks())
        sys.setprofile(profile)
        try:
            for _ in range(3):
                await client.messages.create(**ask)
                async with client.messages.stream(**ask) as stream:
                    await stream.get_final_message()
        finally:
            sys.setprofile(None)
        await client.close()
    assert sorted(ran) == [], "sidecar code ran interpreted per request: compile it (setup.py NATIVE)"


def test_observers_subclass_without_mypy_extensions_at_run_time() -> None:
    # sidecar.core.call reads mypy_extensions' decorator when compiling; an image's runtime has
    # no mypy, and the observer classes must still take interpreted subclasses there.
    code = (
        "import sys; sys.modules['mypy_extensions'] = None\n"
        "from sidecar.core import RequestObserver\n"
        "class Seen(RequestObserver):\n"
        "    def identify(self, request_id): print(request_id)\n"
        "seen = Seen(); seen.identify('req_1'); seen.finish(cancelled=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "req_1\n"
