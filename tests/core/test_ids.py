"""Request ids: the API's shape, unique, from a buffered random source."""

from __future__ import annotations

import os
import re
import threading

from sidecar.core import ids
from sidecar.core.ids import new_request_id

ID = re.compile(r"^req_01[0-9A-Za-z]{22}$")


def test_ids_have_the_api_shape_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(5000)]  # crosses many 4 KiB random blocks
    assert all(ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert new_request_id("msgbatch_").startswith("msgbatch_01")


def test_threads_never_share_random_bytes() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def worker(mine: list[str]) -> None:
        mine.extend(new_request_id() for _ in range(2000))

    threads = [threading.Thread(target=worker, args=(o,)) for o in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for o in out for i in o]
    assert len(set(every)) == len(every) == 8000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_request_id()  # the parent holds a partly used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, " ".join(new_request_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split()
    os.waitpid(pid, 0)
    parent = [new_request_id() for _ in range(10)]
    assert len(child) == 10 and not set(child) & set(parent)
    assert ids._random_at > 0
