"""The sweep's judges (reliability/sweep.py): keys, injected headers, the admin listener."""

from __future__ import annotations

from reliability import sweep


def test_secrets_are_found_in_text_and_bytes() -> None:
    assert sweep.secrets_in("x", "nothing here") == []
    found = sweep.secrets_in("the log", b"... x-api-key: sk-client-sweep-1 ...")
    assert "the secret 'sk-client-sweep-1' appears in the log" in found


def test_injected_or_malformed_upstream_headers_and_client_keys() -> None:
    clean = [[(b"x-api-key", b"sk-fault-a"), (b"anthropic-version", b"2023-06-01")]]
    assert sweep.header_problems(clean) == []
    bad = [
        [(b"x-injected-sweep", b"1")],
        [(b"anthropic-beta", b"a\rb")],
        [(b"x-api-key", b"sk-client-sweep-0")],
    ]
    problems = sweep.header_problems(bad)
    assert len(problems) == 3
    assert any("injected" in p for p in problems) and any("client key" in p for p in problems)


def test_admin_answers() -> None:
    assert sweep.admin_problem("/metrics", "GET", 200, "text/plain", b"x" * 10_000) is None
    assert sweep.admin_problem("/healthz", "HEAD", 200, "text/plain", b"") is None
    assert sweep.admin_problem("/config", "GET", 404, "text/plain", b"not found; try /metrics\n") is None
    assert sweep.admin_problem("/metrics", "POST", 405, "text/plain", b"use GET\n") is None
    assert sweep.admin_problem("/config", "GET", 200, "application/json", b"{}") is not None
    assert sweep.admin_problem("/debug", "GET", 404, "text/html", b"<html>trace</html>") is not None
    assert sweep.admin_problem("/x", "GET", 404, "text/plain", b"y" * 500) is not None
    assert sweep.admin_problem("/healthz", "GET", 503, "text/plain", b"") is not None


def test_raw_answers_are_parsed_chunked_or_not() -> None:
    raw = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nnope"
    assert sweep.parse_answer(raw) == (404, "text/plain", b"nope")
    chunked = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
    assert sweep.parse_answer(chunked) == (200, "text/plain", b"abc")
    assert sweep.parse_answer(b"")[0] == 0
