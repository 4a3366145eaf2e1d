"""nginx as the bench's yardstick: a plain pass-through proxy of ``/v1/`` to the fake upstream.

Debian's package (``make nginx`` installs it); the bench never uses the system service. Each start
writes a config to a temp dir of its own and runs ``nginx -p DIR -c DIR/nginx.conf``: ``daemon off``
and ``master_process off`` (one process, which does the proxying: its CPU is the proxy's CPU), the
pid and error logs in that dir, ``access_log off``, ``listen`` on a free loopback port. ``/v1/`` goes
to the fake upstream through an ``upstream`` block with ``keepalive 64`` (``proxy_http_version 1.1``,
``proxy_set_header Connection ""``), ``proxy_buffering off`` so SSE events flow as they come,
``proxy_request_buffering off``; the client's ``x-api-key`` is replaced by the upstream key, as the
sidecar and the stand-in proxy do. No other work: nginx is the lower bound of what a proxy costs here.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.processes import UPSTREAM_KEY, Child

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;

    upstream fake {{
        server {upstream};
        keepalive 64;
        keepalive_requests 10000000;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=1024;

        location /v1/ {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header x-api-key "{key}";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""
NGINX_DESC = (
    "plain pass-through of /v1/ (daemon off, master_process off, upstream keepalive 64, proxy_buffering and "
    "proxy_request_buffering off, access_log off), config in a temp dir"
)
PORT_TRIES = 3  # a free port picked here can be taken before nginx binds it


def nginx_path() -> str | None:
    """Debian installs nginx in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def nginx_version(binary: str) -> str:
    """``nginx/1.22.1`` (``nginx -v`` writes it to stderr), or what went wrong."""
    try:
        done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"version unknown ({exc})"
    return done.stderr.strip().removeprefix("nginx version: ") or "version unknown"


def nginx_config(directory: Path, upstream_url: str, port: int) -> str:
    hostport = upstream_url.removeprefix("http://").rstrip("/")
    return CONFIG.format(dir=directory, upstream=hostport, port=port, key=UPSTREAM_KEY)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(child: Child, port: int, timeout: float) -> bool:
    """Until 127.0.0.1:port accepts a connection (True), nginx exits or the timeout passes (False)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout * 50) + 1):  # bounded
        if child.proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return False


class NginxSite:
    """Starts nginx for one upstream; each start gets a fresh temp dir (removed by ``stop``)."""

    def __init__(self, binary: str, upstream_url: str) -> None:
        self.binary = binary
        self.upstream_url = upstream_url
        self.version = nginx_version(binary)
        self.config = ""  # the last config written, for the JSON results
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def argv(self, directory: Path) -> list[str]:
        return [self.binary, "-p", f"{directory}/", "-c", str(directory / "nginx.conf"), "-e", "stderr"]

    def start(self, taskset: list[str], log_path: Path, append: bool, timeout: float) -> tuple[Child, str]:
        """Write a config and start nginx (pinned by ``taskset``); the child and its ``http://`` URL."""
        self.stop()
        problem = ""
        for _ in range(PORT_TRIES):
            self._dir = tempfile.TemporaryDirectory(prefix="bench-nginx-")
            directory = Path(self._dir.name)
            port = _free_port()
            self.config = nginx_config(directory, self.upstream_url, port)
            (directory / "nginx.conf").write_text(self.config)
            child = Child("nginx", [*taskset, *self.argv(directory)], log_path, append=append)
            append = True
            if _wait_for_port(child, port, timeout):
                return child, f"http://127.0.0.1:{port}"
            code = child.proc.poll()
            errors = (directory / "error.log").read_text(errors="replace") if code is not None else ""
            problem = (
                f"nginx exited with code {code}"
                if code is not None
                else f"nginx did not listen within {timeout:g} s"
            ) + f"; stderr: {child.stderr_tail(500)!r}; error.log: {errors[-500:]!r}"
            child.stop()
            self.stop()
            if "Address already in use" not in problem:
                break
        raise RuntimeError(problem)

    def stop(self) -> None:
        """Remove the temp dir (after the process is stopped)."""
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
