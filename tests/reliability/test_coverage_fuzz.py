"""The coverage-guided pass (reliability/coverage_fuzz.py) runs each target from the kept corpus
and reports it, and ``--merge`` minimises a run's finds into the corpus; its full sizes run in
`make reliability`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reliability import coverage_fuzz


def test_each_target_runs_clean_and_reports_its_coverage() -> None:
    report, violations = coverage_fuzz.run_all(2_000)
    assert violations == []
    assert len(report) == 1 + len(coverage_fuzz.TARGETS)
    for line, name in zip(report[1:], coverage_fuzz.TARGETS, strict=True):
        assert f"coverage {name}: 2,000 inputs" in line and "exit 0" in line
        # Started from the kept corpus, which only a merge changes.
        count, _ = coverage_fuzz._size(coverage_fuzz.CORPUS / name)
        assert count > 0 and f"from {count} kept inputs" in line


def test_the_kept_corpus_stays_small() -> None:
    sizes = {name: coverage_fuzz._size(coverage_fuzz.CORPUS / name) for name in coverage_fuzz.TARGETS}
    assert sum(size for _, size in sizes.values()) < 300 * 1024, sizes
    assert {p.name for p in coverage_fuzz.CORPUS.iterdir()} == set(coverage_fuzz.TARGETS)


def test_merge_minimises_the_finds_into_the_corpus(tmp_path: Path) -> None:
    kept = tmp_path / "sse"
    report, violations = coverage_fuzz.run_target("sse", 2_000, merge=True, corpus=tmp_path)
    assert violations == []
    first = sorted(p.name for p in kept.iterdir())
    assert first and "merged into" in report[1] and f"{len(first)} inputs" in report[1]
    assert "from 0 kept inputs" in report[0]
    # A copy under another name adds nothing: the next merge keeps inputs under their SHA-1 only.
    (kept / "stray").write_bytes((kept / first[0]).read_bytes())
    report, violations = coverage_fuzz.run_target("sse", 500, merge=True, corpus=tmp_path)
    assert violations == [] and f"from {len(first) + 1} kept inputs" in report[0]
    assert "stray" not in {p.name for p in kept.iterdir()}


def test_the_fuzzed_modules_load_from_their_source_even_where_compiled() -> None:
    # atheris sees branches in bytecode only: with the native build, the compiled validator and
    # converters would be fuzzed blind. The child loads every sidecar module from its source.
    code = (
        "from reliability.coverage_fuzz import _from_source\n"
        "_from_source()\n"
        "import sidecar.core.validate, sidecar.grpc.convert, sidecar.grpc.codec, sidecar.core.sse\n"
        "import sys\n"
        "print(*[m.__file__ for n, m in sys.modules.items() if n.startswith('sidecar') and getattr(m, '__file__', None)])\n"
    )
    root = Path(coverage_fuzz.__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    files = run.stdout.split()
    assert any(f.endswith("validate.py") for f in files)
    assert all(f.endswith(".py") for f in files), [f for f in files if not f.endswith(".py")]
