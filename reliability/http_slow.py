"""Slow and stuck clients of the HTTP door: a fixed list of cases (``CASES``) that the HTTP fuzz
campaign runs once, one after another, after its inputs and against the same sidecar (header and
body timeouts of 1 s). Each case is judged on its own terms:

- ``trickle``: a request sent a byte at a time, the header block within the header timeout, the
  body with pauses each shorter than the body timeout (but longer than it in all): answered 200;
- ``head_too_slow``, ``body_stalls``, ``idle``: a header block dripped past the header timeout,
  a body that stops halfway, a connection that sends nothing: a 408 with the error envelope or a
  close, within the timeout and ``SLACK_S``;
- ``slowloris``: ``SLOWLORIS`` connections dripping their header blocks at once: each cut in
  time, and a normal request served meanwhile;
- ``stream_never_read``: a streamed answer of ~7 MB to a client with a small receive buffer that
  reads nothing: its call is held (still in ``sidecar_requests_in_flight``: the answer waits for
  the client rather than piling up in the sidecar), the sidecar's memory stays flat meanwhile, a
  normal request is served meanwhile, and closing the client frees the call;
- ``stream_never_read_cut``: the same client, kept past the listener's ``send_timeout``: the
  sidecar cuts the connection and ends the call (with its upstream request) in time, and the
  client, once it reads, finds the connection closed;
- ``slow_reader``: a streamed answer of ~350 KB read 8 KB every 50 ms: complete, to
  ``message_stop``;
- ``pipelined_never_read``: ``PIPELINED`` requests for 32 KB answers in one write, none read: the
  sidecar writes no more answers than the socket's buffers hold (``HELD_LIMIT``, counted on
  ``sidecar_requests_total``), serves a normal request meanwhile, and closing frees the calls;
- ``half_close_*``: the client shuts its sending side after a whole request, mid-head, mid-body,
  or after a streaming request whose answer it never reads: an answer or a close, in time, and
  the call ends (the server takes a half-close as the client leaving, as uvicorn does).

Every answer must also pass ``http_wire.answer_problem`` (a 4xx with the envelope, no 5xx), and
after every case no call may be left in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from .http_wire import VALID, Response, answer_problem, parse_responses, post

SLACK_S = 2.0  # past a timeout, for the 408 or the close to arrive
SETTLE_S = 5.0  # for a call to end once its client has gone
NORMAL_S = 3.0  # a normal request must be answered within this, whatever else is going on
SMALL_RCVBUF = 16 * 1024  # the receive buffer of a client that does not read
SLOWLORIS = 100
PIPELINED = 500
HELD_LIMIT = 8 * 1024 * 1024  # answer bytes the sidecar may write for a client that reads none
FLAT_KB = 8 * 1024  # RSS growth allowed over the last second a stuck client is held


@dataclass(frozen=True)
class Door:
    """What the cases need of the sidecar: its HTTP port, its admin URL, its RSS (KB), and the
    HTTP listener's timeouts."""

    port: int
    admin_url: str
    rss_kb: Callable[[], int]
    header_timeout: float = 1.0
    body_timeout: float = 1.0
    send_timeout: float = 5.0


@dataclass
class Result:
    name: str
    outcome: str = ""
    problems: list[str] = field(default_factory=list)


def _stream_body(words: int, per_delta: int) -> bytes:
    """A streaming request the mock answers with ``words`` words, ``per_delta`` to an event."""
    return json.dumps(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": words,
            "stream": True,
            "messages": [
                {"role": "user", "content": f"Hello [mock words={words} words_per_delta={per_delta}]"}
            ],
        }
    ).encode()


def _echo_body(n: int) -> bytes:
    """A request the mock answers with its own ``n``-byte text (one word: cheap to plan)."""
    return json.dumps(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "x" * n + " [mock echo]"}],
        }
    ).encode()


# --- the client's side ----------------------------------------------------------------------------


async def _open(port: int, rcvbuf: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection; with ``rcvbuf``, a small receive buffer, and a reader that buffers little,
    for a client that does not read."""
    if rcvbuf is None:
        return await asyncio.open_connection("127.0.0.1", port)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: no autotuning
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=4096)


@dataclass
class _Read:
    responses: list[Response]
    closed: bool  # the server closed (or reset) the connection
    seconds: float
    data: bytes = b""


async def _read(reader: asyncio.StreamReader, timeout: float, want: int = 1) -> _Read:
    """Until ``want`` complete answers, a close, or ``timeout`` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    data = b""
    closed = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        except ConnectionError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if len(parse_responses(data)[0]) >= want:
            break
    return _Read(parse_responses(data)[0], closed, time.monotonic() - started, data)


async def _drip(writer: asyncio.StreamWriter, data: bytes, gap: float) -> None:
    """``data`` a byte at a time, ``gap`` seconds apart, until done or the server has gone."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(gap)
    except (ConnectionError, OSError):
        pass


def _answers_ok(result: Result, responses: list[Response]) -> None:
    for r in responses:
        problem = answer_problem(r)
        if problem is not None:
            result.problems.append(problem)


def _cut_in_time(result: Result, got: _Read, limit: float, what: str) -> None:
    """A 408 with the envelope, or a close without an answer, within ``limit`` seconds."""
    _answers_ok(result, got.responses)
    statuses = [r.status for r in got.responses]
    if statuses and statuses != [408]:
        result.problems.append(f"{what}: answered {statuses}, not 408")
    elif not statuses and not got.closed:
        result.problems.append(f"{what}: neither a 408 nor a close within {limit:g} s")
    elif got.seconds > limit:
        result.problems.append(f"{what}: cut after {got.seconds:.1f} s (limit {limit:g} s)")
    result.outcome = f"{'408' if statuses else 'closed'} after {got.seconds:.1f} s"


# --- the sidecar's side ---------------------------------------------------------------------------


async def _metric(door: Door, name: str) -> float:
    """The sum of ``name``'s samples on the admin listener's /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(door.admin_url + "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def in_flight(door: Door) -> float:
    return await _metric(door, "sidecar_requests_in_flight")


async def settled(door: Door, timeout: float = SETTLE_S) -> float | None:
    """Seconds until no call is in flight, or None if some still are after ``timeout``."""
    started = time.monotonic()
    while await in_flight(door) > 0:
        if time.monotonic() - started > timeout:
            return None
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def normal(door: Door) -> tuple[str | None, float]:
    """(what went wrong, seconds) for a plain request on a connection of its own."""
    reader, writer = await _open(door.port)
    try:
        writer.write(post(VALID))
        got = await _read(reader, NORMAL_S)
    finally:
        writer.transport.abort()
    if not got.responses:
        return f"a normal request got no answer within {NORMAL_S:g} s", got.seconds
    if got.responses[0].status != 200:
        return f"a normal request got HTTP {got.responses[0].status}", got.seconds
    return None, got.seconds


async def _normal_meanwhile(door: Door, result: Result) -> str:
    problem, seconds = await normal(door)
    if problem is not None:
        result.problems.append(problem + " meanwhile")
        return "a normal request meanwhile FAILED"
    return f"a normal request meanwhile 200 in {seconds * 1000:.0f} ms"


async def _freed(door: Door, result: Result, what: str) -> str:
    seconds = await settled(door)
    if seconds is None:
        result.problems.append(f"{what}: calls still in flight {SETTLE_S:g} s later")
        return "calls NOT freed"
    return f"freed in {seconds:.1f} s"


# --- the cases ------------------------------------------------------------------------------------


async def trickle(door: Door) -> Result:
    result = Result("trickle")
    data = post(VALID)
    head_end = data.index(b"\r\n\r\n") + 4
    head, body = data[:head_end], data[head_end:]
    pauses = {len(body) // 3, 2 * len(body) // 3}
    pause = 0.6 * door.body_timeout
    reader, writer = await _open(door.port)
    try:
        started = time.monotonic()
        # The header timeout covers the whole block: a byte at a time within 40 % of it.
        await _drip(writer, head, 0.4 * door.header_timeout / len(head))
        head_s = time.monotonic() - started
        last, longest = time.monotonic(), 0.0
        for i in range(len(body)):
            if i in pauses:
                await asyncio.sleep(pause)
            writer.write(body[i : i + 1])
            await writer.drain()
            now = time.monotonic()
            longest, last = max(longest, now - last), now
            await asyncio.sleep(0.02)
        got = await _read(reader, NORMAL_S)
    finally:
        writer.transport.abort()
    total = time.monotonic() - started
    if head_s >= door.header_timeout - 0.1 or longest >= door.body_timeout - 0.1:
        # This client was too slow itself (a busy machine): not a test of the server.
        result.outcome = (
            f"not judged: the client took {head_s:.2f} s for the head, {longest:.2f} s between body bytes"
        )
        return result
    _answers_ok(result, got.responses)
    if [r.status for r in got.responses] != [200]:
        result.problems.append(
            f"a request trickled within the timeouts got {[r.status for r in got.responses]}"
            f" (closed={got.closed}) instead of 200"
        )
    status = got.responses[0].status if got.responses else "no answer"
    result.outcome = (
        f"{status} after {total:.1f} s (head byte by byte in {head_s:.2f} s, body byte by byte in"
        f" {total - head_s:.1f} s, pauses up to {longest:.1f} s)"
    )
    return result


async def head_too_slow(door: Door) -> Result:
    result = Result("head_too_slow")
    reader, writer = await _open(door.port)
    dripping = asyncio.create_task(_drip(writer, post(VALID), 0.1))
    try:
        limit = door.header_timeout + SLACK_S
        got = await _read(reader, limit)
    finally:
        dripping.cancel()
        writer.transport.abort()
    _cut_in_time(result, got, limit, "a header block dripped a byte every 0.1 s")
    return result


async def body_stalls(door: Door) -> Result:
    result = Result("body_stalls")
    data = post(VALID)
    reader, writer = await _open(door.port)
    try:
        writer.write(data[: data.index(b"\r\n\r\n") + 4 + len(VALID) // 2])
        limit = door.body_timeout + SLACK_S
        got = await _read(reader, limit)
    finally:
        writer.transport.abort()
    _cut_in_time(result, got, limit, "a body that stopped halfway")
    return result


async def idle(door: Door) -> Result:
    result = Result("idle")
    reader, writer = await _open(door.port)
    try:
        limit = door.header_timeout + SLACK_S
        got = await _read(reader, limit)
    finally:
        writer.transport.abort()
    _cut_in_time(result, got, limit, "a connection that sent nothing")
    return result


async def slowloris(door: Door) -> Result:
    result = Result("slowloris")
    limit = door.header_timeout + SLACK_S

    async def one() -> _Read:
        reader, writer = await _open(door.port)
        dripping = asyncio.create_task(_drip(writer, post(VALID), 0.1))
        try:
            return await _read(reader, limit)
        finally:
            dripping.cancel()
            writer.transport.abort()

    clients = [asyncio.create_task(one()) for _ in range(SLOWLORIS)]
    await asyncio.sleep(0.3)
    meanwhile = await _normal_meanwhile(door, result)
    reads = await asyncio.gather(*clients)
    cut = Result("")
    for got in reads:
        _cut_in_time(cut, got, limit, "a dripping connection among many")
    result.problems += sorted(set(cut.problems))
    got_408 = sum(1 for got in reads if got.responses)
    slowest = max(got.seconds for got in reads)
    result.outcome = (
        f"{SLOWLORIS} connections dripping their heads: {got_408} got 408, {SLOWLORIS - got_408} a close,"
        f" the last after {slowest:.1f} s; {meanwhile}"
    )
    return result


async def stream_never_read(door: Door) -> Result:
    result = Result("stream_never_read")
    rss0 = door.rss_kb()
    reader, writer = await _open(door.port, SMALL_RCVBUF)
    try:
        writer.write(post(_stream_body(1_000_000, 100)))
        await asyncio.sleep(1.0)
        held, rss1 = await in_flight(door), door.rss_kb()
        meanwhile = await _normal_meanwhile(door, result)
        await asyncio.sleep(1.0)
        rss2 = door.rss_kb()
        await asyncio.sleep(1.0)
        held_later, rss3 = await in_flight(door), door.rss_kb()
    finally:
        writer.close()
    freed = await _freed(door, result, "a stream whose client closed without reading")
    if held < 1 or held_later < 1:
        result.problems.append(
            "a stream whose client reads nothing ended its call within 3 s:"
            " its ~7 MB answer went into a buffer"
        )
    if rss3 - rss2 > FLAT_KB:
        result.problems.append(
            f"the sidecar grew {rss3 - rss2} KB in a second while holding a stream nobody reads"
        )
    result.outcome = (
        f"held ({held_later:g} in flight after 3 s); RSS {rss0 // 1024} MB before,"
        f" {rss1 // 1024} MB once planned, {(rss3 - rss2) // 1024:+d} MB over the last second;"
        f" {meanwhile}; closed: {freed}"
    )
    return result


async def stream_never_read_cut(door: Door) -> Result:
    result = Result("stream_never_read_cut")
    reader, writer = await _open(door.port, SMALL_RCVBUF)
    started = time.monotonic()
    try:
        writer.write(post(_stream_body(1_000_000, 100)))
        await asyncio.sleep(1.0)
        if await in_flight(door) < 1:
            result.problems.append("a stream whose client reads nothing ended its call within 1 s")
        ended = await settled(door, door.send_timeout + SLACK_S)
        if ended is None:
            result.problems.append(
                f"a client that read nothing for send_timeout ({door.send_timeout:g} s) still held "
                f"its call {door.send_timeout + SLACK_S + 1:g} s after its request"
            )
        # What the sidecar wrote before the cut can be read; then the connection ends.
        closed = False
        deadline = time.monotonic() + SLACK_S
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(1 << 16), SLACK_S)
                if not chunk:
                    closed = True
                    break
        if not closed:
            result.problems.append("the connection of a client cut for reading nothing stayed open")
    except TimeoutError:
        result.problems.append("the connection of a client cut for reading nothing stayed open")
    finally:
        writer.transport.abort()
    result.outcome = f"call ended {time.monotonic() - started:.1f} s after the request (send_timeout {door.send_timeout:g} s)"
    return result


async def slow_reader(door: Door) -> Result:
    result = Result("slow_reader")
    reader, writer = await _open(door.port, SMALL_RCVBUF)
    started = time.monotonic()
    data = b""
    try:
        writer.write(post(_stream_body(20_000, 10)))
        while not data.endswith(b"\r\n0\r\n\r\n") and time.monotonic() - started < 60:
            try:
                chunk = await asyncio.wait_for(reader.read(8192), 10)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            await asyncio.sleep(0.05)
    finally:
        writer.transport.abort()
    seconds = time.monotonic() - started
    responses, _ = parse_responses(data)
    _answers_ok(result, responses)
    events = (
        [line for line in responses[0].body.split(b"\n") if line.startswith(b"event: ")] if responses else []
    )
    if [r.status for r in responses] != [200] or not events or events[-1] != b"event: message_stop":
        result.problems.append(
            f"a slowly read stream did not end with message_stop: statuses {[r.status for r in responses]},"
            f" last event {events[-1:]!r}, {len(data)} bytes in {seconds:.1f} s"
        )
    if b"event: error" in events:
        result.problems.append("a slowly read stream carried an error event")
    last = events[-1].decode()[7:] if events else "none"
    result.outcome = (
        f"{len(data) // 1024} KB read 8 KB every 50 ms in {seconds:.1f} s: {len(events)} events to {last}"
    )
    return result


async def pipelined_never_read(door: Door) -> Result:
    result = Result("pipelined_never_read")
    request = post(_echo_body(32 * 1024))
    # One answer's size, read as a client would.
    reader, writer = await _open(door.port)
    try:
        writer.write(request)
        one = await _read(reader, NORMAL_S)
    finally:
        writer.transport.abort()
    if not one.responses or one.responses[0].status != 200:
        result.problems.append(f"the echo request got {[r.status for r in one.responses]}")
        return result
    size = len(one.data)
    done0 = await _metric(door, "sidecar_requests_total")
    reader, writer = await _open(door.port, SMALL_RCVBUF)
    try:
        writer.write(request * PIPELINED)
        await asyncio.sleep(1.5)
        done1 = await _metric(door, "sidecar_requests_total")
        meanwhile = await _normal_meanwhile(door, result)
        await asyncio.sleep(1.0)
        served = await _metric(door, "sidecar_requests_total") - done0 - 1  # not the normal one
    finally:
        writer.transport.abort()  # close() would wait for the unsent requests to go first
    freed = await _freed(door, result, "pipelined requests whose client closed without reading")
    if served * size > HELD_LIMIT:
        result.problems.append(
            f"the sidecar wrote {served:g} answers ({served * size / 2**20:.1f} MB) for a client that"
            f" read none (at most {HELD_LIMIT // 2**20} MB of answers may wait for a client)"
        )
    result.outcome = (
        f"{PIPELINED} requests for {size // 1024} KB answers in one write, none read:"
        f" {done1 - done0:g} answered after 1.5 s, {served:g} after 2.5 s"
        f" ({served * size / 2**20:.1f} MB, what the sockets' buffers hold); {meanwhile}; closed: {freed}"
    )
    return result


async def _half_closed(door: Door, name: str, data: bytes, limit: float) -> Result:
    """``data``, then the client shuts its sending side and reads: an answer or a close in time."""
    result = Result(name)
    reader, writer = await _open(door.port)
    try:
        writer.write(data)
        writer.write_eof()
        got = await _read(reader, limit)
    finally:
        writer.transport.abort()
    _answers_ok(result, got.responses)
    if not got.responses and not got.closed:
        result.problems.append(f"after a half-close: neither an answer nor a close within {limit:g} s")
    freed = await _freed(door, result, "a half-closed connection")
    statuses = [r.status for r in got.responses]
    result.outcome = f"{statuses[0] if statuses else 'closed'} after {got.seconds:.1f} s; {freed}"
    return result


async def half_close_after_request(door: Door) -> Result:
    return await _half_closed(door, "half_close_after_request", post(VALID), NORMAL_S)


async def half_close_mid_head(door: Door) -> Result:
    data = post(VALID)
    return await _half_closed(
        door, "half_close_mid_head", data[: data.index(b"\r\n") + 10], door.header_timeout + SLACK_S
    )


async def half_close_mid_body(door: Door) -> Result:
    data = post(VALID)
    return await _half_closed(
        door, "half_close_mid_body", data[: len(data) - len(VALID) // 2], door.body_timeout + SLACK_S
    )


async def half_close_stream_never_read(door: Door) -> Result:
    result = Result("half_close_stream_never_read")
    reader, writer = await _open(door.port, SMALL_RCVBUF)
    try:
        writer.write(post(_stream_body(1_000_000, 100)))
        await asyncio.sleep(0.5)
        writer.write_eof()
        # The client keeps its socket and reads nothing: the half-close alone must end the call.
        freed = await _freed(door, result, "a streaming request half-closed and never read")
    finally:
        writer.transport.abort()
    result.outcome = f"half-closed 0.5 s into the stream: {freed}"
    return result


Case = Callable[[Door], Awaitable[Result]]
CASES: tuple[Case, ...] = (
    trickle,
    head_too_slow,
    body_stalls,
    idle,
    slowloris,
    stream_never_read,
    stream_never_read_cut,
    slow_reader,
    pipelined_never_read,
    half_close_after_request,
    half_close_mid_head,
    half_close_mid_body,
    half_close_stream_never_read,
)


async def run_all(door: Door, cases: tuple[Case, ...] = CASES) -> list[Result]:
    """Each case in turn, from a sidecar with nothing in flight; a case that raises is a problem."""
    results = []
    before = Result("before")
    await _freed(door, before, "after the fuzz's inputs")
    if before.problems:
        results.append(before)
    for case in cases:
        try:
            result = await case(door)
        except Exception as exc:  # the case's own failure, reported with the others
            result = Result(case.__name__, "FAILED", [f"{type(exc).__name__}: {exc}"])
        if await in_flight(door) > 0:
            await _freed(door, result, "after the case")
        results.append(result)
    return results
