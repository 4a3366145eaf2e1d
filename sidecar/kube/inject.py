"""``sidecar inject``: add the sidecar to Kubernetes workloads, the way ``istioctl kube-inject`` does.

It reads YAML documents (a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, or
a List of them), and writes them back with, in each pod template:

- the sidecar as a native sidecar (an init container with ``restartPolicy: Always``, Kubernetes
  1.29+), or with ``classic=True`` as the first regular container with a ``postStart`` hook that
  waits for readiness, so the app does not start before the sidecar can answer;
- its config volume (a ConfigMap), an ``emptyDir`` for ``/tmp`` and one for its state directory
  (``STATE_DIR``: the batches and files stores; ``XDG_STATE_HOME`` points there), as the root
  filesystem is read-only (a PersistentVolumeClaim of that name, already in the pod, is kept: the
  README shows one for durable batches and files), the upstream keys from a Secret (optional), OTLP settings from an optional ConfigMap;
- probes on the admin port (startup, readiness, liveness), resources, and a restricted
  ``securityContext`` (non-root, read-only root filesystem, no privilege escalation, all
  capabilities dropped, the runtime's seccomp profile);
- ``ANTHROPIC_BASE_URL`` and ``SIDECAR_GRPC_TARGET`` in every app container's environment;
- ports that do not collide with the app's, and a ``terminationGracePeriodSeconds`` long enough
  for the sidecar's drain.

Injecting twice gives the same result as injecting once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["CONTAINER_NAME", "InjectError", "InjectOptions", "inject_documents", "inject_yaml"]

CONTAINER_NAME = "messages-sidecar"
CONFIG_VOLUME = "messages-sidecar-config"
TMP_VOLUME = "messages-sidecar-tmp"
STATE_VOLUME = "messages-sidecar-state"
# The batches database and the files store (the default dir is $XDG_STATE_HOME/messages-sidecar).
STATE_DIR = "/var/lib/messages-sidecar"
CONFIG_DIR = "/etc/messages-sidecar"
INJECTED_ANNOTATION = "sidecar.messages.dev/injected"
# Where each workload kind keeps its pod template.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class InjectError(ValueError):
    """The input cannot be injected (not YAML, no pod template, malformed containers)."""


@dataclass(frozen=True, kw_only=True)
class InjectOptions:
    """What to inject. Defaults match deploy/ and the measurements in the README."""

    image: str = "messages-sidecar:0.1.0"
    config_map: str = "messages-sidecar"  # holds sidecar.yaml
    env_config_map: str = "messages-sidecar-env"  # optional: OTEL_* settings
    secret: str = "messages-sidecar-keys"  # optional: upstream keys as env vars
    http_port: int = 8080
    grpc_port: int = 50051
    admin_port: int = 9901
    drain_timeout: int = 30  # seconds the sidecar drains on SIGTERM
    classic: bool = False  # a regular container instead of a native sidecar
    # Requests from measurements (README "Sizing"); the memory limit leaves room for bursts.
    cpu_request: str = "100m"
    memory_request: str = "96Mi"
    memory_limit: str = "512Mi"
    extra_env: dict[str, str] = field(default_factory=dict)


def _pod_template(doc: dict[str, Any]) -> dict[str, Any] | None:
    path = _TEMPLATE_PATHS.get(str(doc.get("kind")))
    if path is None:
        return None
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            raise InjectError(f"{doc.get('kind')} {_name(doc)}: no pod template at {'.'.join(path)}")
        node = node[key]
    return node  # type: ignore[no-any-return]


def _name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("name", "?")) if isinstance(meta, dict) else "?"


def _used_ports(containers: list[dict[str, Any]]) -> set[int]:
    used: set[int] = set()
    for container in containers:
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                for key in ("containerPort", "hostPort"):
                    if isinstance(port.get(key), int):
                        used.add(port[key])
    return used


def _free_port(wanted: int, used: set[int]) -> int:
    port = wanted
    while port in used:
        port += 1
    used.add(port)
    return port


def _sidecar(options: InjectOptions, http: int, grpc: int, admin: int) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/readyz", "port": "sidecar-admin"}, "periodSeconds": 5, "timeoutSeconds": 2}
    env: list[dict[str, Any]] = [
        {"name": "SIDECAR_DRAIN_TIMEOUT", "value": str(options.drain_timeout)},
        {"name": "XDG_STATE_HOME", "value": STATE_DIR.rsplit("/", 1)[0]},
        {
            "name": "ANTHROPIC_API_KEY",
            "valueFrom": {
                "secretKeyRef": {"name": options.secret, "key": "anthropic-api-key", "optional": True}
            },
        },
    ]
    env.extend({"name": k, "value": v} for k, v in sorted(options.extra_env.items()))
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--config",
            f"{CONFIG_DIR}/sidecar.yaml",
            "--host",
            "127.0.0.1",
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--admin-host",
            "0.0.0.0",
            "--admin-port",
            str(admin),
        ],
        "env": env,
        "envFrom": [{"configMapRef": {"name": options.env_config_map, "optional": True}}],
        # The API ports are loopback-only (the app calls localhost); only the admin port is
        # bound on the pod IP, for the kubelet and Prometheus.
        "ports": [{"name": "sidecar-admin", "containerPort": admin, "protocol": "TCP"}],
        "startupProbe": {**probe, "periodSeconds": 1, "failureThreshold": 60},
        "readinessProbe": probe,
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "sidecar-admin"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"memory": options.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
            {"name": STATE_VOLUME, "mountPath": STATE_DIR},
        ],
    }
    if options.classic:
        # Kubernetes starts regular containers in order and runs the next one only after this
        # hook returns: the app waits until the sidecar is ready.
        container["lifecycle"] = {
            "postStart": {
                "exec": {"command": ["sidecar", "wait-ready", "--port", str(admin), "--timeout", "60"]}
            }
        }
    else:
        container["restartPolicy"] = "Always"
    return container


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    if not isinstance(env, list):
        raise InjectError(f"container {container.get('name')!r}: env must be a list")
    for item in env:
        if isinstance(item, dict) and item.get("name") == name:
            item.clear()
            item.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def _without_sidecar(items: Any) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
        raise InjectError("containers must be a list of objects")
    return [c for c in items if c.get("name") != CONTAINER_NAME]


def _inject_template(template: dict[str, Any], options: InjectOptions) -> None:
    spec = template.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise InjectError("the pod template's spec must be an object")
    containers = _without_sidecar(spec.get("containers"))
    if not containers:
        raise InjectError("the pod template has no containers")
    init_containers = _without_sidecar(spec.get("initContainers"))
    used = _used_ports(containers + init_containers)
    http = _free_port(options.http_port, used)
    grpc = _free_port(options.grpc_port, used)
    admin = _free_port(options.admin_port, used)
    sidecar = _sidecar(options, http, grpc, admin)
    for container in containers:
        _set_env(container, "ANTHROPIC_BASE_URL", f"http://127.0.0.1:{http}")
        _set_env(container, "SIDECAR_GRPC_TARGET", f"127.0.0.1:{grpc}")
    if options.classic:
        spec["containers"] = [sidecar, *containers]
        if init_containers:
            spec["initContainers"] = init_containers
        else:
            spec.pop("initContainers", None)
    else:
        # Native sidecars start in order: first, so other init containers can use it too.
        spec["initContainers"] = [sidecar, *init_containers]
        spec["containers"] = containers
    existing = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
    state = existing.get(STATE_VOLUME)
    volumes = [
        v
        for v in spec.get("volumes") or []
        if not (isinstance(v, dict) and v.get("name") in (CONFIG_VOLUME, TMP_VOLUME, STATE_VOLUME))
    ]
    volumes.append({"name": CONFIG_VOLUME, "configMap": {"name": options.config_map}})
    volumes.append({"name": TMP_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
    # On the node's disk by default (lost with the pod); a claim the workload names is kept.
    if state is None or "persistentVolumeClaim" not in state:
        state = {"name": STATE_VOLUME, "emptyDir": {}}
    volumes.append(state)
    spec["volumes"] = volumes
    grace = options.drain_timeout + 15
    current = spec.get("terminationGracePeriodSeconds")
    spec["terminationGracePeriodSeconds"] = max(grace, current) if isinstance(current, int) else grace
    meta = template.setdefault("metadata", {})
    meta.setdefault("labels", {})[INJECTED_ANNOTATION] = "true"  # for the PodMonitor
    annotations = meta.setdefault("annotations", {})
    annotations[INJECTED_ANNOTATION] = "classic" if options.classic else "native"
    annotations["prometheus.io/scrape"] = "true"
    annotations["prometheus.io/port"] = str(admin)
    annotations["prometheus.io/path"] = "/metrics"


def inject_documents(docs: list[Any], options: InjectOptions) -> list[Any]:
    """Inject into every workload among ``docs``; other documents pass unchanged."""
    out: list[Any] = []
    injected = 0
    for doc in docs:
        doc = copy.deepcopy(doc)
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            doc["items"] = inject_documents(doc["items"], options)
            injected += 1
        elif isinstance(doc, dict):
            template = _pod_template(doc)
            if template is not None:
                try:
                    _inject_template(template, options)
                except InjectError as exc:
                    raise InjectError(f"{doc.get('kind')} {_name(doc)}: {exc}") from None
                injected += 1
        out.append(doc)
    if not injected:
        raise InjectError(
            "no workload with a pod template found (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod ...)"
        )
    return out


def inject_yaml(text: str, options: InjectOptions) -> str:
    """YAML documents in, YAML documents out."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InjectError(f"invalid YAML: {exc}") from None
    result = inject_documents(docs, options)
    return yaml.safe_dump_all(result, sort_keys=False, default_flow_style=False)
