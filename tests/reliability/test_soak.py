"""The soak's judge (reliability/soak.py): growth after warm-up, by its stated rule."""

from __future__ import annotations

import os
import socket
from collections import Counter

from reliability import soak


def _samples(
    n: int,
    rss: float = 100_000,
    traced: float = 20e6,
    fds: float = 30,
    tasks: float = 18,
    series: float = 1200,
    rss_slope: float = 0.0,
    fd_slope: float = 0.0,
) -> list[soak.Sample]:
    return [
        soak.Sample(
            float(i), int(rss + rss_slope * i), int(fds + fd_slope * i), tasks + (i % 3), traced, int(series)
        )
        for i in range(n)
    ]


def test_a_flat_run_passes_and_warm_up_is_not_judged() -> None:
    samples = _samples(200)
    for s in samples[:100]:  # the first half may grow all it likes (warm-up)
        s.rss_kb = int(s.rss_kb * (0.5 + s.t / 200))
    figures, violations = soak.judge(samples)
    assert violations == [] and set(figures) == {"rss_kb", "traced", "fds", "tasks", "series"}


def test_memory_growth_of_5_percent_over_the_second_half_is_a_violation() -> None:
    # +100 KB a sample: the second half's quarter medians (samples ~112 and ~187) 6.7 % apart.
    _, violations = soak.judge(_samples(200, rss_slope=100))
    assert len(violations) == 1 and violations[0].startswith("rss_kb grew")
    _, violations = soak.judge(_samples(200, rss_slope=20))  # ~+1.5 %: within the limit
    assert violations == []


def test_counts_may_fluctuate_but_not_grow() -> None:
    _, violations = soak.judge(_samples(200))  # tasks go 18, 19, 20, 18 ...: fine
    assert violations == []
    _, violations = soak.judge(_samples(200, fd_slope=0.05))  # one fd leaked every 20 s
    assert len(violations) == 1 and violations[0].startswith("fds grew")
    # One more socket at the end than at the start's peak: keep-alive churn, not a leak.
    churn = _samples(200)
    for sample in churn[-25:]:
        sample.fds = 31
    _, violations = soak.judge(churn)
    assert violations == []


def test_too_short_a_run_is_not_judged_as_passing() -> None:
    _, violations = soak.judge(_samples(5))
    assert violations and "too short" in violations[0]


def test_metrics_text_series_and_gauges() -> None:
    text = '# HELP x y\n# TYPE x gauge\nsidecar_event_loop_tasks 16.0\na{b="c d"} 1.0\n\nz_total 3\n'
    assert soak.series_and_gauges(text) == (3, {"sidecar_event_loop_tasks": 16.0, "z_total": 3.0})


def test_a_growth_of_fds_names_what_grew() -> None:
    samples = _samples(200)
    for sample in samples:
        sample.fd_kinds = Counter({"listening on :8080": 1, "connected to :9000": 2, "pipe": 4})
    for sample in samples[-40:]:
        sample.fds += 3
        sample.fd_kinds = Counter({"listening on :8080": 1, "connected to :9000": 5, "pipe": 4})
    _, violations = soak.judge(samples)
    assert len(violations) == 1
    assert violations[0].endswith("more at the end than at that maximum: connected to :9000 +3")


def test_fd_kinds_of_a_live_process() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    try:
        kinds = soak.fd_kinds(os.getpid())
        assert kinds[f"listening on :{port}"] == 1
        assert kinds[f"accepted on :{port}"] == 1
        assert kinds[f"connected to :{port}"] == 1
        assert sum(kinds.values()) == len(os.listdir(f"/proc/{os.getpid()}/fd")) - 1  # listdir's own
    finally:
        for s in (client, accepted, server):
            s.close()
