"""Command line: ``sidecar [options]`` serves; ``sidecar check-config FILE`` validates."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import msgspec

from . import __version__
from .config import Config, default_config, load_config
from .errors import ConfigError

__all__ = ["config_from_argv", "main", "resolve_config"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sidecar",
        description="The Anthropic Messages API on localhost, over HTTP and gRPC. "
        "Without --config or --upstream it answers with a built-in mock model. "
        "`sidecar check-config FILE` validates a config file without serving.",
    )
    p.add_argument("--version", action="version", version=f"sidecar {__version__}")
    p.add_argument("--config", metavar="FILE", help="YAML config: listeners, upstreams, routes")
    p.add_argument("--upstream", metavar="URL", help="proxy every model to this Anthropic-compatible URL")
    p.add_argument(
        "--provider",
        choices=["anthropic", "openai"],
        default="anthropic",
        help="what --upstream speaks: the Anthropic Messages API (default) or OpenAI chat completions",
    )
    p.add_argument(
        "--upstream-model", metavar="NAME", help="ask --upstream for this model whatever the client names"
    )
    p.add_argument(
        "--upstream-key",
        metavar="KEY",
        default=os.environ.get("SIDECAR_UPSTREAM_KEY"),
        help="upstream API key replacing the client's (default: $SIDECAR_UPSTREAM_KEY; "
        "without one, the client's own x-api-key/Authorization are forwarded)",
    )
    p.add_argument("--host", help="listen address for both doors (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="HTTP port (default 8080; 0 picks a free port)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (default 50051; 0 picks a free port)")
    p.add_argument("--no-http", action="store_true", help="do not serve HTTP")
    p.add_argument("--no-grpc", action="store_true", help="do not serve gRPC")
    p.add_argument(
        "--admin-host",
        help="listen address of the admin listener (/metrics, /healthz, /readyz; default 127.0.0.1)",
    )
    p.add_argument("--admin-port", type=int, help="admin listener port (default 9901; 0 picks a free port)")
    p.add_argument("--no-admin", action="store_true", help="do not serve the admin listener")
    p.add_argument("--no-metrics", action="store_true", help="do not record Prometheus metrics")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=float(os.environ["SIDECAR_DRAIN_TIMEOUT"])
        if os.environ.get("SIDECAR_DRAIN_TIMEOUT")
        else None,
        help="seconds to drain on SIGTERM (default 30, or $SIDECAR_DRAIN_TIMEOUT)",
    )
    p.add_argument(
        "--request-log",
        action="store_true",
        help="one JSON line per request on stderr (telemetry.request_log)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return p


def resolve_config(args: argparse.Namespace) -> Config:
    """The config a command line asks for: a file, or flags, with flags overriding the file."""
    if args.config:
        if args.upstream:
            raise ConfigError("--upstream cannot be combined with --config (define upstreams in the file)")
        if args.upstream_model or args.provider != "anthropic":
            raise ConfigError("--provider and --upstream-model go with --upstream, not --config")
        config = load_config(args.config)
    else:
        config = default_config(args.upstream, args.upstream_key, args.provider, args.upstream_model)
    listeners = config.listeners
    http, grpc = listeners.http, listeners.grpc
    if args.http_port is not None:
        http = msgspec.structs.replace(http, port=args.http_port)
    if args.grpc_port is not None:
        grpc = msgspec.structs.replace(grpc, port=args.grpc_port)
    if args.no_http:
        http = msgspec.structs.replace(http, enabled=False)
    if args.no_grpc:
        grpc = msgspec.structs.replace(grpc, enabled=False)
    admin = config.admin
    if args.admin_port is not None:
        admin = msgspec.structs.replace(admin, port=args.admin_port)
    if args.admin_host:
        admin = msgspec.structs.replace(admin, host=args.admin_host)
    if args.no_admin:
        admin = msgspec.structs.replace(admin, enabled=False)
    if args.no_metrics:
        config = msgspec.structs.replace(
            config, telemetry=msgspec.structs.replace(config.telemetry, metrics=False)
        )
    config = msgspec.structs.replace(config, admin=admin)
    if args.request_log:
        config = msgspec.structs.replace(
            config, telemetry=msgspec.structs.replace(config.telemetry, request_log=True)
        )
    drain = args.drain_timeout
    if drain is None and os.environ.get("SIDECAR_DRAIN_TIMEOUT"):
        try:
            drain = float(os.environ["SIDECAR_DRAIN_TIMEOUT"])
        except ValueError:
            raise ConfigError("SIDECAR_DRAIN_TIMEOUT: must be a number of seconds") from None
    if drain is not None:
        if drain < 0:
            raise ConfigError("--drain-timeout: must be >= 0")
        config = msgspec.structs.replace(
            config, lifecycle=msgspec.structs.replace(config.lifecycle, drain_timeout=drain)
        )
    for flag, port in (
        ("--http-port", args.http_port),
        ("--grpc-port", args.grpc_port),
        ("--admin-port", args.admin_port),
    ):
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"{flag}: must be between 0 and 65535")
    listeners = msgspec.structs.replace(listeners, http=http, grpc=grpc, host=args.host or listeners.host)
    if (
        listeners.host not in ("127.0.0.1", "::1", "localhost")
        and config.admission is None
        and config.auth != "none"
    ):
        raise ConfigError(
            f"listeners.host: {listeners.host} is not loopback and no client keys are configured; "
            "add an admission key store, or write `auth: none` to serve it unauthenticated"
        )
    if not (listeners.http.enabled or listeners.grpc.enabled):
        raise ConfigError("listeners: both doors are switched off")
    return msgspec.structs.replace(config, listeners=listeners)


def config_from_argv(argv: list[str]) -> Config:
    """The config ``sidecar ARGV`` serves (flags, environment defaults and checks applied)."""
    return resolve_config(_parser().parse_args(argv))


def _check_config(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: sidecar check-config FILE", file=sys.stderr)
        return 2
    try:
        config = load_config(argv[0])
    except ConfigError as exc:
        print(f"sidecar: invalid config: {exc}", file=sys.stderr)
        return 1
    print(f"{argv[0]}: ok ({len(config.upstreams)} upstreams, {len(config.routes)} routes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check-config"]:
        return _check_config(argv[1:])
    if argv[:1] in (["inject"], ["wait-ready"]):
        from .kube.commands import inject_main, wait_ready_main

        return (inject_main if argv[0] == "inject" else wait_ready_main)(argv[1:])
    args = _parser().parse_args(argv)
    if os.environ.get("SIDECAR_TRACEMALLOC") == "1":
        # Opt-in (soak tests): trace Python allocations, served as sidecar_traced_memory_bytes.
        # It slows allocation-heavy code down severalfold: never on by default.
        import tracemalloc

        tracemalloc.start()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = resolve_config(args)
    except ConfigError as exc:
        print(f"sidecar: invalid config: {exc}", file=sys.stderr)
        return 1
    if config.telemetry.request_log:
        # JSON lines as they are (no timestamp prefix: each line carries its own `ts`).
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        requests_log = logging.getLogger("sidecar.requests")
        requests_log.addHandler(handler)
        requests_log.setLevel(logging.INFO)
        requests_log.propagate = False
    import uvloop

    from .runtime import serve

    try:
        uvloop.run(serve(config, args.config, lambda: resolve_config(args)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
