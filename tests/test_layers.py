"""The package's layering, read from its source: every import statement (at the top, inside
functions and under ``TYPE_CHECKING`` alike) goes down the layers below, and no import cycle
exists between modules. A change that imports sideways or upward fails here, naming the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sidecar"

# Bottom first. A module may import its own unit (top-level module or package) and any unit of
# a lower layer; nothing of its own layer or above.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("core",),  # what a request is and what comes back; imports only errors
    ("http1", "http2"),  # our HTTP/1.1 on httptools (the API listener, the upstream pool); HTTP/2 (gRPC)
    ("config",),  # typed, validated config, every section of it
    ("translate", "messages"),  # pure provider translation; the generated protobuf code
    ("upstreams", "routing", "hops"),  # adapters; route lookup and policies; sidecar chains
    ("admission",),
    ("telemetry",),
    ("files",),  # the Files API stored by the sidecar; file references resolved into sources
    ("pipeline",),  # the one request pipeline both doors call
    ("batches",),  # Message Batches: the store, the local runner, create/list/... for the doors
    ("lifecycle",),  # config snapshots, drain
    ("http", "grpc"),  # the two doors
    ("runtime", "kube", "client"),  # the process; `sidecar inject`; the Python gRPC client
    ("cli",),
    ("__main__",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
RANK[""] = -1  # sidecar/__init__.py holds only __version__: a leaf every layer may read


def _module_name(path: Path) -> str:
    parts = ["sidecar", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The package module ``name`` is, or the nearest enclosing one that exists."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported package module) for every import statement in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from . import convert` names a module; `from .core import Call` a name in one.
            names = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "sidecar" or name.startswith("sidecar."):
                target = _resolve(name)
                if target is not None and target != module:
                    found.append((node.lineno, target))
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_is_in_a_layer() -> None:
    units = {_unit(m) for m in MODULES} - {""}
    assert units <= set(RANK), f"add these to LAYERS: {sorted(units - set(RANK))}"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module in MODULES:
        unit = _unit(module)
        if not unit:
            continue
        for line, target in imports(module):
            other = _unit(target)
            if other != unit and RANK[other] >= RANK[unit]:
                wrong.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not wrong, "imports that go sideways or up:\n" + "\n".join(wrong)


def test_core_imports_only_errors() -> None:
    for module in MODULES:
        if _unit(module) == "core":
            others = {_unit(t) for _, t in imports(module)} - {"core"}
            assert others <= {"errors"}, (module, others)


def test_no_import_cycles() -> None:
    graph = {m: sorted({t for _, t in imports(m)}) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module)


def test_the_checker_sees_what_it_must() -> None:
    """The walk finds imports inside functions and under TYPE_CHECKING, and resolves relative
    ones, so the tests above cannot pass by not looking."""
    found = {target for _, target in imports("sidecar.upstreams.registry")}
    assert {"sidecar.upstreams.anthropic", "sidecar.upstreams.mock", "sidecar.config"} <= found
    typed = {target for _, target in imports("sidecar.telemetry.hook")}
    assert "sidecar.admission.gate" in typed
