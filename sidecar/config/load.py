"""Load a config: YAML -> ``${ENV}`` substitution -> typed ``Config`` -> cross-field checks.

Every failure is one ``ConfigError`` whose message names the field
(``upstreams.main.timeouts.connect: Expected `float`, got `str```).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..errors import ConfigError
from .admission import RedisBackend, build_admission_config
from .convert import convert
from .model import (
    AnthropicUpstreamConfig,
    Config,
    HttpUpstreamConfig,
    Listeners,
    MockUpstreamConfig,
    OpenAIUpstreamConfig,
    RedisBatchStore,
    Route,
    UpstreamConfig,
)

__all__ = ["build_config", "default_config", "load_config", "substitute_env"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a decoded YAML tree."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path or '<root>'}: environment variable {name} is not set")

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{path}.{i}") for i, v in enumerate(value)]
    return value


def build_config(data: Any) -> Config:
    """Validate a decoded (and env-substituted) tree into a Config."""
    if data is None:
        data = {}
    upstreams = data.get("upstreams") if isinstance(data, dict) else None
    if isinstance(upstreams, dict):
        # Each upstream on its own, so an error names it (msgspec shows dict keys as `[...]`).
        for name, value in upstreams.items():
            convert(value, UpstreamConfig, f"upstreams.{name}")
    # The admission section is decoded on its own, once, by _check (build_admission_config names
    # the tier in its errors); any other value is left for msgspec to refuse here.
    admission = data.get("admission") if isinstance(data, dict) else None
    if isinstance(admission, dict):
        data = {**data, "admission": None}
    else:
        admission = None
    config: Config = convert(data, Config, "")
    return _check(config, admission)


def _check(config: Config, admission: dict[str, Any] | None = None) -> Config:
    """Cross-field checks; raises ConfigError naming the field. Returns ``config`` with
    ``admission`` (the section's decoded YAML tree, if any) as its typed ``AdmissionConfig``."""
    if not config.upstreams:
        raise ConfigError("upstreams: at least one upstream is required")
    if admission is not None:
        # Raises ConfigError naming the field.
        config = msgspec.structs.replace(config, admission=build_admission_config(admission))
    if not config.routes:
        raise ConfigError("routes: at least one route is required")
    for name, up in config.upstreams.items():
        if isinstance(up, AnthropicUpstreamConfig):
            _check_http(f"upstreams.{name}", up, up.base_url)
        elif isinstance(up, OpenAIUpstreamConfig):
            _check_openai(name, up)
        elif isinstance(up, MockUpstreamConfig):
            if up.words < 0 or up.words_per_delta < 1 or up.ttft_ms < 0 or up.gap_ms < 0:
                raise ConfigError(
                    f"upstreams.{name}: words, ttft_ms and gap_ms must be >= 0, words_per_delta >= 1"
                )
    for i, route in enumerate(config.routes):
        if (route.upstream is None) == (route.policy is None):
            raise ConfigError(f"routes.{i}: give either upstream or policy")
        if route.policy is not None:
            if route.model is not None:
                raise ConfigError(f"routes.{i}.model: with a policy, set model on its targets")
            for name in route.policy.upstream_names():
                if name not in config.upstreams:
                    raise ConfigError(f"routes.{i}.policy: no upstream named {name!r}")
        elif route.upstream not in config.upstreams:
            raise ConfigError(f"routes.{i}.upstream: no upstream named {route.upstream!r}")
        if not route.match:
            raise ConfigError(f"routes.{i}.match: must not be empty")
        if route.forward_client_key:
            names = route.policy.upstream_names() if route.policy is not None else [route.upstream or ""]
            for name in names:
                if getattr(config.upstreams[name], "api_key", None):
                    raise ConfigError(
                        f"routes.{i}.forward_client_key: upstream {name!r} sets api_key, which would "
                        "replace the client's key; remove one of them"
                    )
    for alias, target in config.aliases.items():
        if not target:
            raise ConfigError(f"aliases.{alias}: must name a model")
    for which in ("http", "grpc"):
        port = getattr(config.listeners, which).port
        if not 0 <= port <= 65535:
            raise ConfigError(f"listeners.{which}.port: must be between 0 and 65535")
    if config.lifecycle.drain_timeout < 0 or config.lifecycle.watch_interval <= 0:
        raise ConfigError("lifecycle: drain_timeout must be >= 0 and watch_interval > 0")
    if config.listeners.max_body_bytes < 1024:
        raise ConfigError("listeners.max_body_bytes: must be at least 1024")
    if not 0 <= config.admin.port <= 65535:
        raise ConfigError("admin.port: must be between 0 and 65535")
    if not config.admin.host:
        raise ConfigError("admin.host: must not be empty")
    if config.telemetry.model_label_limit < 0:
        raise ConfigError("telemetry.model_label_limit: must be >= 0")
    endpoint = config.telemetry.traces.endpoint
    if endpoint is not None and not endpoint.strip():
        raise ConfigError("telemetry.traces.endpoint: must not be empty (omit it to use OTEL_*)")
    store = config.batches.store
    if isinstance(store, RedisBatchStore) and store.url is None:
        # The same Redis as admission's limits, unless the store names its own.
        backend = config.admission.backend if config.admission is not None else None
        if not isinstance(backend, RedisBackend):
            raise ConfigError(
                "batches.store.url: required with kind redis (or set admission.backend "
                "{kind: redis, url}, whose Redis the batches then share)"
            )
        store = msgspec.structs.replace(store, url=backend.url)
        config = msgspec.structs.replace(config, batches=msgspec.structs.replace(config.batches, store=store))
    return config


def _check_http(where: str, up: HttpUpstreamConfig, base_url: str) -> None:
    """The settings every HTTP upstream shares: its URL, pool, timeouts, CA bundle and proxy."""
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url: must start with http:// or https://")
    if up.max_connections < 1:
        raise ConfigError(f"{where}.max_connections: must be at least 1")
    t = up.timeouts
    if t.connect <= 0 or t.read <= 0 or any(v is not None and v <= 0 for v in (t.first_byte, t.total)):
        raise ConfigError(f"{where}.timeouts: must be positive")
    if up.ca_bundle is not None:
        if not base_url.startswith("https://"):
            raise ConfigError(f"{where}.ca_bundle: base_url is not https://, so there is no TLS to verify")
        try:
            up.tls_context()
        except ssl.SSLError as exc:  # before OSError, its base
            reason = exc.reason or str(exc).split(" (_ssl.c")[0]
            raise ConfigError(
                f"{where}.ca_bundle: {up.ca_bundle!r} holds no usable PEM certificate ({reason})"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{where}.ca_bundle: cannot read {up.ca_bundle!r}: {exc.strerror}") from None
    if up.proxy is not None:
        _check_proxy(f"{where}.proxy", up.proxy)


def _check_proxy(where: str, proxy: str) -> None:
    parts = urlsplit(proxy)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "http":
        raise ConfigError(f"{where}: must be an http:// URL (https upstreams are tunnelled with CONNECT)")
    if not parts.hostname or port == -1 or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{where}: must look like http://host:port (or http://user:password@host:port)")


def _check_openai(name: str, up: OpenAIUpstreamConfig) -> None:
    where = f"upstreams.{name}"
    _check_http(where, up, up.base_url)
    if up.base_url.rstrip("/").endswith("/chat/completions"):
        raise ConfigError(f"{where}.base_url: give the server's root; /v1/chat/completions is appended")
    if not up.ping_interval > 0:
        raise ConfigError(f"{where}.ping_interval: must be positive")
    for key in up.extra_headers:
        if not key or key.lower() in ("host", "content-length", "content-type", "transfer-encoding"):
            raise ConfigError(f"{where}.extra_headers: {key!r} cannot be set")
        if key.lower() == "authorization" and up.api_key:
            raise ConfigError(f"{where}.extra_headers: set api_key or an Authorization header, not both")


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {os.fspath(path)!r}: {exc.strerror}") from None
    import yaml  # only a config or keys file needs it (start-up, memory)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError("the config file must hold a mapping at the top level")
    return build_config(substitute_env(data, os.environ if env is None else env))


def default_config(
    upstream: str | None = None,
    upstream_key: str | None = None,
    provider: str = "anthropic",
    upstream_model: str | None = None,
) -> Config:
    """The config used without a file: the mock model, or one upstream serving every model.

    ``provider`` is ``anthropic`` (Anthropic-compatible) or ``openai`` (chat completions);
    ``upstream_model`` renames every requested model to that one upstream model.
    """
    if upstream:
        if provider == "openai":
            upstreams: dict[str, Any] = {
                "default": OpenAIUpstreamConfig(base_url=upstream, api_key=upstream_key)
            }
        elif provider == "anthropic":
            upstreams = {"default": AnthropicUpstreamConfig(base_url=upstream, api_key=upstream_key)}
        else:
            raise ConfigError(f"--provider: must be anthropic or openai, not {provider!r}")
    else:
        if upstream_model:
            raise ConfigError("--upstream-model: needs --upstream")
        upstreams = {"mock": MockUpstreamConfig()}
    name = next(iter(upstreams))
    config = Config(
        listeners=Listeners(),
        upstreams=upstreams,
        routes=[Route(match="*", upstream=name, model=upstream_model)],
    )
    return _check(config)
