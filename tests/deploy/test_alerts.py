"""deploy/monitoring's alert rules: promtool's checks and unit tests (Debian's prometheus package),
the PrometheusRule in step with the plain file, runbooks. (test_dashboard.py loads them into a
real Prometheus and checks their metrics are on a real sidecar's /metrics.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.deploy.test_manifests import DEPLOY, _docs

RULES = DEPLOY / "monitoring" / "sidecar.rules.yml"
OPERATOR_RULES = DEPLOY / "monitoring" / "prometheus-rules.yaml"
UNIT_TESTS = Path(__file__).with_name("sidecar_alerts_test.yml")
# Debian puts promtool in /usr/bin; `make test` installs the package (make prometheus).
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "make test installs Debian's prometheus package (promtool)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _docs(RULES)[0]["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    r = _promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in r.stdout


def test_promtool_unit_tests_pass() -> None:
    r = _promtool("test", "rules", str(UNIT_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    tests = _docs(UNIT_TESTS)[0]
    assert [Path(p) for p in tests["rule_files"]] == [Path("../../deploy/monitoring/sidecar.rules.yml")]
    for alert in _alerts():
        cases = [
            case
            for group in tests["tests"]
            for case in group["alert_rule_test"]
            if case["alertname"] == alert["alert"]
        ]
        assert any(case["exp_alerts"] for case in cases), f"{alert['alert']} never expected to fire"
        assert any(not case["exp_alerts"] for case in cases), f"{alert['alert']} never expected silent"


def test_a_rule_that_does_not_fire_fails_its_unit_test(tmp_path: Path) -> None:
    # The unit tests catch a broken rule: raise every threshold out of reach.
    broken = tmp_path / "deploy" / "monitoring"
    broken.mkdir(parents=True)
    text = re.sub(r"\s(>|==) [0-9.]+\n", " > 1e9\n", RULES.read_text())
    assert text != RULES.read_text()
    (broken / RULES.name).write_text(text)
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / "deploy")
    r = _promtool("test", "rules", str(tmp_path / "tests" / "deploy" / UNIT_TESTS.name))
    assert r.returncode != 0
    for alert in _alerts():
        assert f"alertname: {alert['alert']}," in r.stderr


def test_prometheusrule_carries_the_plain_rules() -> None:
    [rule] = _docs(OPERATOR_RULES)
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == _docs(RULES)[0]


def test_every_alert_has_annotations_and_a_runbook() -> None:
    readme = (ROOT / "README.md").read_text()
    runbooks = readme[readme.index("### Alerts") :]
    for alert in _alerts():
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert f"**{alert['alert']}**" in runbooks, f"no runbook for {alert['alert']}"
