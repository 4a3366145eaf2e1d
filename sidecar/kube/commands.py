"""The ``inject`` and ``wait-ready`` subcommands."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request

from .inject import InjectError, InjectOptions, inject_yaml

__all__ = ["inject_main", "wait_ready_main"]


def inject_main(argv: list[str]) -> int:
    defaults = InjectOptions()
    p = argparse.ArgumentParser(prog="sidecar inject", description="Add the sidecar to Kubernetes workloads.")
    p.add_argument("-f", "--filename", required=True, help="YAML with Deployments, Pods, ... ('-' for stdin)")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    p.add_argument(
        "--classic",
        action="store_true",
        help="a regular container with a start-up guard (clusters before 1.29)",
    )
    p.add_argument("--image", default=defaults.image)
    p.add_argument("--config-map", default=defaults.config_map, help="ConfigMap holding sidecar.yaml")
    p.add_argument(
        "--secret", default=defaults.secret, help="Secret holding upstream keys (optional at run time)"
    )
    p.add_argument("--http-port", type=int, default=defaults.http_port)
    p.add_argument("--grpc-port", type=int, default=defaults.grpc_port)
    p.add_argument("--admin-port", type=int, default=defaults.admin_port)
    p.add_argument(
        "--drain-timeout", type=int, default=defaults.drain_timeout, help="seconds (sets the grace period)"
    )
    args = p.parse_args(argv)
    options = InjectOptions(
        image=args.image,
        config_map=args.config_map,
        secret=args.secret,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        admin_port=args.admin_port,
        drain_timeout=args.drain_timeout,
        classic=args.classic,
    )
    try:
        text = sys.stdin.read() if args.filename == "-" else open(args.filename, encoding="utf-8").read()
    except OSError as exc:
        print(f"sidecar inject: cannot read {args.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        out = inject_yaml(text, options)
    except InjectError as exc:
        print(f"sidecar inject: {exc}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


def wait_ready_main(argv: list[str]) -> int:
    """Block until the sidecar's /readyz answers 200 (the classic-mode start-up guard)."""
    p = argparse.ArgumentParser(prog="sidecar wait-ready")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9901, help="the admin port")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds")
    args = p.parse_args(argv)
    url = f"http://{args.host}:{args.port}/readyz"
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return 0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    print(f"sidecar wait-ready: {url} not ready after {args.timeout:g} s", file=sys.stderr)
    return 1
