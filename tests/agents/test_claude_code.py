"""Claude Code itself (the CLI the ``claude-agent-sdk`` wheel bundles, installed by ``make test``
into ``.venv-claude``) in print mode against a sidecar, inside a network namespace with only
loopback, so it reaches nothing else. Its agent loops end, in a handful of requests.

The two mock prompts are the ones that looped before the mock ended tool loops: an Agent
prompt (1,237 requests in 60 s) and an older model name whose tool list and reminders name every
tool (303 requests in 15 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

CLAUDE = next(
    iter(sorted(ROOT.glob(".venv-claude/lib/python3*/site-packages/claude_agent_sdk/_bundled/claude"))), None
)


def run_agent(*cli_args: str, upstream: str = "mock", model: str = "claude-sonnet-4-6") -> dict[str, Any]:
    assert CLAUDE is not None, "make test installs claude-agent-sdk (which bundles the CLI) into .venv-claude"
    assert os.geteuid() == 0 and shutil.which("unshare"), (
        "the test needs root and unshare for a loopback-only netns"
    )
    cmd = ["unshare", "-n", sys.executable, "-m", "tests.agents.netns_run", "--claude", str(CLAUDE)]
    cmd += ["--upstream", upstream, "--model", model, "--timeout", "90", "--", *cli_args]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    summary: dict[str, Any] = json.loads(run.stdout)
    assert summary["returncode"] == 0, summary
    result = summary["result"]
    assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"], result
    return summary


@pytest.mark.parametrize(
    ("prompt", "model"),
    [("ask an Agent to say hi", "claude-sonnet-4-6"), ("say hi", "claude-3-5-haiku-latest")],
)
def test_claude_code_on_the_mock_gets_an_answer(prompt: str, model: str) -> None:
    summary = run_agent(prompt, model=model)
    requests = summary["requests"]
    assert 1 <= len(requests) <= 8, requests
    assert {r["status"] for r in requests} == {200}
    assert summary["result"]["result"]


def test_claude_code_through_the_openai_compatible_fake() -> None:
    """The strict fake plays a model that runs ``echo hi`` with Bash once, then answers: Claude
    Code's real request (beta fields, a dozen tools, thinking) is translated, its tool call comes
    back as a tool_use, the CLI runs it, and the result goes up as an OpenAI tool message."""
    summary = run_agent("say hi using Bash", "--allowedTools", "Bash", upstream="openai")
    assert summary["rejected"] == []
    assert summary["upstream_roles"] == [["system", "user"], ["system", "user", "assistant", "tool"]]
    assert any("hi" in str(output) for output in summary["tool_output"]), summary["tool_output"]
    assert summary["result"]["result"] == "Done: the command printed hi."
    assert len(summary["requests"]) == 2
