"""The native build (``setup.py``, ``make native``): the modules it lists are the ones compiled,
each loads from its compiled form, and no compiled module is older than its source or left over
from a module no longer listed (Python would load it instead of the source)."""

from __future__ import annotations

import importlib
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sidecar"
NATIVE: list[str] = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["NATIVE"]
BUILT = PACKAGE / "_native.built"  # `make native` touches it after a build


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def compiled_beside_sources() -> list[Path]:
    """The compiled modules in the package (the shared runtime library aside)."""
    return [p for p in PACKAGE.rglob("*.so") if not p.name.startswith("_native__mypyc")]


def stale_compiled() -> list[str]:
    """Compiled modules whose source changed after they were built (``make native`` rebuilds)."""
    stale = []
    for so in compiled_beside_sources():
        source = so.with_name(so.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > so.stat().st_mtime:
            stale.append(str(source.relative_to(ROOT)))
    return stale


def test_every_listed_module_is_a_source_of_the_package() -> None:
    assert NATIVE == sorted(set(NATIVE))
    for path in NATIVE:
        assert (ROOT / path).is_file(), path
        assert path.startswith("sidecar/")


def test_only_listed_modules_are_compiled() -> None:
    listed = {ROOT / path for path in NATIVE}
    leftovers = [
        str(so.relative_to(ROOT))
        for so in compiled_beside_sources()
        if so.with_name(so.name.split(".", 1)[0] + ".py") not in listed
    ]
    assert leftovers == [], "compiled modules setup.py no longer lists: `make native` removes them"


def test_the_listed_modules_load_compiled_in_a_native_build() -> None:
    if not BUILT.exists():
        pytest.skip("a pure build: `make native` (which `make test` runs) has not built the modules")
    for path in NATIVE:
        module = importlib.import_module(_module(path))
        assert str(module.__file__).endswith(".so"), f"{path} loads from {module.__file__}"
