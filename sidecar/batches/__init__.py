"""Message Batches, run or forwarded by the sidecar (issue 16).

- ``store``: the one interface batches live behind (``BatchStore``); ``sqlite``: its embedded
  implementation, a file under ``batches.dir``; ``redis``: the one replicas share.
- ``runner``: the ``BatchRunner`` that runs the entries of local batches through the pipeline,
  at most ``batches.concurrency`` at once, under leases that survive a crash.
- ``service``: ``Batches``, the endpoints the doors call: create (validate every entry, route
  it, forward or store), retrieve, list, cancel, delete, results.
"""

from __future__ import annotations

from .redis import RedisStore
from .runner import BatchRunner
from .service import PREFIX, Batches, database_path, default_dir
from .sqlite import SqliteStore
from .store import BatchRecord, BatchStore

__all__ = [
    "PREFIX",
    "BatchRecord",
    "BatchRunner",
    "BatchStore",
    "Batches",
    "RedisStore",
    "SqliteStore",
    "database_path",
    "default_dir",
]
