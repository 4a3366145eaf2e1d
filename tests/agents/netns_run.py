"""Run Claude Code once against a sidecar, inside a network namespace that has only loopback.

Started by ``test_claude_code.py`` as ``unshare -n python -m tests.agents.netns_run ARGS``: it
brings ``lo`` up, starts a sidecar (on the mock, or on the strict fake OpenAI server started here
too), runs the CLI in print mode with a timeout, and prints one JSON summary on stdout: the CLI's
exit code and result, and the requests the sidecar's request log and the fake recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from tests.conftest import start_sidecar
from tests.fakes.openai_api import FakeOpenAI, Plan, Recorded, chunk, text_chunks, usage_chunk


def _bash_once(rec: Recorded) -> Plan:
    """A model's agent loop in one tool call: run ``echo hi`` with Bash, then answer in text."""
    body = rec.json()
    results = [m for m in body["messages"] if m["role"] == "tool"]
    if results:
        return Plan(chunks=text_chunks("Done: the command printed hi.", prompt=80))
    names = [t["function"]["name"] for t in body.get("tools", [])]
    if "Bash" not in names:
        return Plan(chunks=text_chunks("hi", prompt=40))
    arguments = json.dumps({"command": "echo hi", "description": "Say hi"})
    call = {
        "index": 0,
        "id": "call_bash_0",
        "type": "function",
        "function": {"name": "Bash", "arguments": arguments},
    }
    chunks: list[Any] = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [call]}),
        chunk({}, "tool_calls"),
        usage_chunk(60, 20),
        "[DONE]",
    ]
    return Plan(chunks=chunks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claude", required=True)
    parser.add_argument("--upstream", choices=["mock", "openai"], default="mock")
    parser.add_argument("--model", default="claude-sonnet-4-6")
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("cli_args", nargs="*")
    args = parser.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    fake: FakeOpenAI | None = None
    sidecar_args = ["--request-log", "--no-grpc", "--no-admin"]
    if args.upstream == "openai":
        fake = FakeOpenAI().start()
        fake.reset(_bash_once)
        sidecar_args += [
            "--upstream",
            fake.base_url + "/v1",
            "--provider",
            "openai",
            "--upstream-model",
            "fake-model",
        ]
    sp = start_sidecar(*sidecar_args, expect_grpc=False)
    home = tempfile.mkdtemp(prefix="claude-home-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "ANTHROPIC_BASE_URL": sp.http_url,
        "ANTHROPIC_API_KEY": "sk-test-not-a-real-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    cmd = [args.claude, "-p", *args.cli_args, "--output-format", "json", "--model", args.model]
    cmd += ["--no-session-persistence"]
    try:
        run = subprocess.run(
            cmd,
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
        returncode, stdout, stderr = run.returncode, run.stdout, run.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stdout, stderr = -1, exc.stdout or "", exc.stderr or ""
        stdout = stdout if isinstance(stdout, str) else stdout.decode()
        stderr = stderr if isinstance(stderr, str) else stderr.decode()
    sp.stop()
    logged = []
    for line in sp.lines:
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("operation") == "chat":
                logged.append({"model": record.get("model"), "status": record.get("status")})
    upstream: list[list[str]] = []
    tool_output: list[Any] = []
    if fake is not None:
        for rec in fake.requests:
            if rec.path.endswith("/completions"):
                messages = rec.json()["messages"]
                upstream.append([m["role"] for m in messages])
                tool_output += [m["content"] for m in messages if m["role"] == "tool"]
        fake.stop()
    try:
        result = json.loads(stdout)
    except ValueError:
        result = None
    summary = {
        "returncode": returncode,
        "result": result,
        "stderr": stderr[-2000:],
        "requests": logged,
        "upstream_roles": upstream,
        "tool_output": tool_output,
        "rejected": fake.rejected if fake is not None else [],
    }
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
