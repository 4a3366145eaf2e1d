"""The HTTP fuzz's slow and stuck clients (reliability/http_slow.py): the judges, and the quick
cases against a sidecar in this process (the campaign runs them all on the sidecar as it ships)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability import http_fuzz, http_slow
from reliability.http_wire import Response
from tests.inprocess import ThreadedSidecar

ENVELOPE = b'{"type":"error","error":{"type":"invalid_request_error","message":"too slow"}}'


def _cut(responses: list[Response], closed: bool, seconds: float) -> http_slow.Result:
    result = http_slow.Result("x")
    http_slow._cut_in_time(result, http_slow._Read(responses, closed, seconds), 3.0, "case")
    return result


def test_a_slow_client_must_get_408_with_the_envelope_or_a_close_in_time() -> None:
    assert _cut([Response(408, {}, ENVELOPE)], closed=False, seconds=1.1).problems == []
    assert _cut([Response(408, {}, ENVELOPE)], closed=False, seconds=1.1).outcome == "408 after 1.1 s"
    assert _cut([], closed=True, seconds=1.0).problems == []
    assert _cut([], closed=True, seconds=1.0).outcome == "closed after 1.0 s"
    assert _cut([], closed=False, seconds=3.0).problems  # neither
    assert _cut([], closed=True, seconds=3.5).problems  # too late
    assert _cut([Response(200, {}, b"{}")], closed=True, seconds=1.0).problems  # not cut
    assert _cut([Response(408, {}, b"too slow")], closed=True, seconds=1.0).problems  # no envelope


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[http_slow.Door]:
    path: Path = tmp_path_factory.mktemp("slow") / "config.yaml"
    path.write_text(http_fuzz.config(0, 0, 0))  # the campaign's timeouts (the flags set the ports)
    sidecar = ThreadedSidecar("--config", str(path))
    try:
        yield http_slow.Door(
            int(sidecar.http_url.rsplit(":", 1)[1]),
            sidecar.admin_url,
            lambda: (
                int(Path(f"/proc/{os.getpid()}/statm").read_text().split()[1])
                * os.sysconf("SC_PAGESIZE")
                // 1024
            ),
        )
    finally:
        sidecar.stop()


@pytest.mark.parametrize(
    "case",
    [
        http_slow.body_stalls,
        http_slow.idle,
        http_slow.stream_never_read,
        http_slow.stream_never_read_cut,
        http_slow.half_close_after_request,
        http_slow.half_close_mid_body,
        http_slow.half_close_stream_never_read,
    ],
)
async def test_quick_cases_pass_on_the_sidecar(door: http_slow.Door, case: http_slow.Case) -> None:
    (result,) = await http_slow.run_all(door, (case,))
    assert result.problems == [], result.outcome
    assert result.outcome
