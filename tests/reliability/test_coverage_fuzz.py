"""The coverage-guided pass (reliability/coverage_fuzz.py) runs each target and reports it; its
full sizes run in `make reliability`."""

from __future__ import annotations

from reliability import coverage_fuzz


def test_each_target_runs_clean_and_reports_its_coverage() -> None:
    report, violations = coverage_fuzz.run_all(2_000)
    assert violations == []
    assert len(report) == 1 + len(coverage_fuzz.TARGETS)
    for line, name in zip(report[1:], coverage_fuzz.TARGETS, strict=True):
        assert f"coverage {name}: 2,000 inputs" in line and "exit 0" in line
