"""``core.aio.current_task``: what ``asyncio.current_task()`` answers, without its getpid."""

from __future__ import annotations

import asyncio
import threading

import uvloop

from sidecar.core.aio import current_task


def test_outside_a_loop_there_is_no_task() -> None:
    assert current_task() is None


def test_each_new_loop_and_each_task_is_found() -> None:
    async def probe() -> tuple[object, object]:
        return current_task(), asyncio.current_task()

    async def main() -> list[tuple[object, object]]:
        first = await probe()
        inner = await asyncio.gather(*(asyncio.create_task(probe()) for _ in range(3)))
        return [first, *inner]

    for run in (asyncio.run, uvloop.run, asyncio.run):  # a new loop each time: the remembered one misses
        seen = run(main())
        assert all(mine is theirs and mine is not None for mine, theirs in seen)
        assert len({id(mine) for mine, _ in seen}) == 4


def test_a_callback_outside_any_task_sees_none() -> None:
    async def main() -> object:
        current_task()  # remember this loop
        loop = asyncio.get_running_loop()
        seen = loop.create_future()
        loop.call_soon(lambda: seen.set_result(current_task()))
        return await seen

    assert asyncio.run(main()) is None


def test_threads_keep_their_own_loops() -> None:
    results: list[bool] = []

    async def probe() -> bool:
        await asyncio.sleep(0.01)
        return current_task() is asyncio.current_task()

    def worker() -> None:
        results.append(all(asyncio.run(asyncio.wait_for(probe(), 5)) for _ in range(20)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4
