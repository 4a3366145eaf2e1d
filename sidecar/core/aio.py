"""``current_task()`` without a system call per use.

On CPython 3.11, ``asyncio.current_task()`` with no loop asks ``get_running_loop()``, which checks
the process id on every call: a ``getpid`` system call, three per HTTP request on the sidecar's
path (profiled: 7 % of its CPU under load, syscalls being dear on a virtual machine). Given the
loop, ``current_task(loop)`` is a dict lookup, so the loop this thread last ran is remembered
and asked first; only a miss (no task on that loop, e.g. a new loop) pays the full lookup.
A thread runs one loop at a time, so a task found on the remembered loop is this thread's.
The lookup itself reads asyncio's table of current tasks (``_current_tasks``, C code's dict on
3.11 and 3.12) rather than calling ``asyncio.current_task``, which is Python code.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_seen = threading.local()  # .loop: the loop this thread last ran (compiled: no subclass)
# loop -> its running task; None where asyncio keeps it elsewhere (then asyncio is asked).
_CURRENT: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = getattr(
    asyncio.tasks, "_current_tasks", None
)


def current_task() -> asyncio.Task[Any] | None:
    """The running task, as ``asyncio.current_task()`` answers it (None outside a task)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_seen, "loop", None)
    if loop is not None:
        task = _CURRENT.get(loop) if _CURRENT is not None else asyncio.current_task(loop)
        if task is not None:
            return task
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    _seen.loop = loop
    return asyncio.current_task(loop)
