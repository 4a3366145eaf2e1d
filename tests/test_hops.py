"""Sidecar chains: the hop count that refuses loops, and Server-Timing entries, outermost first."""

from __future__ import annotations

import pytest

from sidecar.config.policy import HopConfig
from sidecar.errors import InvalidRequest
from sidecar.hops import HopLimitExceeded, add_server_timing, check_hops, forward_hops, server_timing_entry


def test_hops_count_and_refuse_loops() -> None:
    cfg = HopConfig(max_hops=3)
    assert check_hops({}, cfg) == 0
    headers: dict[str, str] = {}
    forward_hops(headers, check_hops({"sidecar-hops": "2"}, cfg), cfg)
    assert headers == {"sidecar-hops": "3"}
    with pytest.raises(HopLimitExceeded) as info:
        check_hops(headers, cfg)
    err = info.value
    assert (err.status, err.error_type) == (508, "api_error")
    assert ("x-should-retry", "false") in err.headers
    assert "loop" in err.message
    with pytest.raises(InvalidRequest, match="sidecar-hops"):
        check_hops({"sidecar-hops": "-1"}, cfg)


def test_server_timing_reads_outermost_first() -> None:
    headers = [("content-type", "application/json"), ("Server-Timing", 'sidecar-2;dur=0.6;desc="zone-a"')]
    add_server_timing(headers, server_timing_entry(1, 0.00081, 'edge "1"'))
    assert headers == [
        ("content-type", "application/json"),
        ("server-timing", 'sidecar-1;dur=0.8;desc="edge \\"1\\"", sidecar-2;dur=0.6;desc="zone-a"'),
    ]
