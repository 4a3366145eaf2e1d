"""Regenerate, or check, the committed protobuf/gRPC code from proto/.

::

    python -m sidecar.grpc.codegen --write   # regenerate sidecar/messages/v1/*_pb2*.py[i]
    python -m sidecar.grpc.codegen --check   # exit 1 with a diff summary if they are stale

The code is generated with the pinned grpcio-tools (``python -m grpc_tools.protoc``, which also
brings the well-known protos such as ``google/protobuf/descriptor.proto``) into a temporary
directory; ``--write`` then syncs it into the tree (and deletes generated files whose proto is
gone), ``--check`` compares it with the committed files.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["OUT_DIR", "PROTO_DIR", "ROOT", "check", "generate", "main", "write"]

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
# The proto package directory; generated files land in the same relative path under ROOT.
PACKAGE_PATH = Path("sidecar/messages/v1")
OUT_DIR = ROOT / PACKAGE_PATH
# What protoc writes; anything else in OUT_DIR (the hand-written __init__.py) is left alone.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _is_generated(name: str) -> bool:
    return name.endswith(GENERATED_SUFFIXES)


def _protos() -> list[str]:
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in (PROTO_DIR / PACKAGE_PATH).glob("*.proto"))


def generate(dest: Path) -> dict[str, bytes]:
    """Run protoc into ``dest``; return generated file name -> content."""
    protos = _protos()
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_DIR / PACKAGE_PATH}")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I.",
        f"--python_out={dest}",
        f"--pyi_out={dest}",
        f"--grpc_python_out={dest}",
        *protos,
    ]
    done = subprocess.run(cmd, cwd=PROTO_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    out = dest / PACKAGE_PATH
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if _is_generated(p.name)}


def _committed() -> dict[str, bytes]:
    if not OUT_DIR.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(OUT_DIR.iterdir()) if _is_generated(p.name)}


def _fresh() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="sidecar-codegen-") as tmp:
        return generate(Path(tmp))


def _differences(fresh: dict[str, bytes], committed: dict[str, bytes]) -> list[str]:
    names = sorted(set(fresh) | set(committed))
    return [(PACKAGE_PATH / n).as_posix() for n in names if fresh.get(n) != committed.get(n)]


def check() -> list[str]:
    """Paths (relative to the repo root) of generated files that differ from a fresh run."""
    return _differences(_fresh(), _committed())


def write() -> list[str]:
    """Regenerate into the tree; return the paths that changed (written or deleted)."""
    fresh = _fresh()
    committed = _committed()
    changed = _differences(fresh, committed)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in fresh.items():
        if committed.get(name) != content:
            (OUT_DIR / name).write_bytes(content)
    for name in committed:
        if name not in fresh:
            (OUT_DIR / name).unlink()
    for init in (OUT_DIR / "__init__.py", OUT_DIR.parent / "__init__.py"):
        if not init.exists():
            init.write_text('"""Generated protobuf/gRPC code; see proto/ and sidecar.grpc.codegen."""\n')
    return changed


def _summary(fresh: dict[str, bytes], committed: dict[str, bytes], max_lines: int = 12) -> str:
    lines: list[str] = []
    for path in _differences(fresh, committed):
        name = Path(path).name
        if name not in committed:
            lines.append(f"missing (not committed): {path}")
            continue
        if name not in fresh:
            lines.append(f"stale (no proto generates it): {path}")
            continue
        old = committed[name].decode("utf-8", "replace").splitlines()
        new = fresh[name].decode("utf-8", "replace").splitlines()
        diff = list(
            difflib.unified_diff(old, new, "committed/" + path, "generated/" + path, lineterm="", n=0)
        )
        added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        lines.append(f"differs: {path} (+{added} -{removed} lines)")
        lines.extend("    " + d[:160] for d in diff[2 : 2 + max_lines])
        if len(diff) > 2 + max_lines:
            lines.append("    ...")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar.grpc.codegen", description=__doc__.split("\n")[0]
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the committed code")
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed code is stale")
    args = parser.parse_args(argv)
    if args.write:
        changed = write()
        for path in changed:
            print(f"wrote {path}")
        if not changed:
            print("generated code is up to date")
        return 0
    fresh = _fresh()
    committed = _committed()
    if _differences(fresh, committed):
        print(_summary(fresh, committed))
        print(
            "generated code is stale: run `make proto` (python -m sidecar.grpc.codegen --write)",
            file=sys.stderr,
        )
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
