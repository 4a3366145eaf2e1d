"""The sidecar under test, as it ships: ``python -m sidecar --config FILE`` in its own process,
on free loopback ports, its output kept in a log the campaigns read afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

READY_TIMEOUT_S = 20.0
# Secrets the campaigns send: none may ever appear in the sidecar's output.
SECRETS = ("sk-fault-a", "sk-fault-b", "sk-client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SidecarProcess:
    """``async with SidecarProcess(config_for) as s``: ``config_for(admin, http, grpc)`` gives the
    YAML config for those ports; ``s.http_url``, ``s.grpc_target``, ``s.admin_url``."""

    def __init__(self, config_for: Callable[[int, int, int], str]) -> None:
        self.admin_port, self.http_port, self.grpc_port = free_port(), free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sidecar-reliability-"))
        self.config = self.dir / "config.yaml"
        self.config.write_text(config_for(self.admin_port, self.http_port, self.grpc_port))
        self.log = self.dir / "sidecar.log"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> SidecarProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the sidecar exited at start-up:\n{self.log.read_text()}")
                try:
                    if (await client.get(self.admin_url + "/readyz")).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the sidecar was not ready within {READY_TIMEOUT_S} s:\n{self.log.read_text()}")

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sidecar process has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        """The sidecar process's resident memory now, in KB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_problems(self) -> list[str]:
        """Tracebacks and leaked secrets in the sidecar's output so far."""
        text = self.log.read_text(errors="replace")
        problems = []
        if "Traceback" in text:
            start = text.index("Traceback")
            problems.append(f"a traceback in the sidecar's log ({self.log}):\n{text[start : start + 1500]}")
        for secret in SECRETS:
            if secret in text:
                problems.append(f"the secret {secret!r} appears in the sidecar's log ({self.log})")
        return problems
