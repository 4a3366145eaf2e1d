"""Message Batches, run or forwarded by the sidecar (issue 16).

- ``store``: the one interface batches live behind (``BatchStore``); ``sqlite``: its embedded
  implementation, a file under ``batches.dir``; ``redis``: the one replicas share.
- ``runner``: the ``BatchRunner`` that runs the entries of local batches through the pipeline,
  at most ``batches.concurrency`` at once, under leases that survive a crash.
- ``service``: ``Batches``, the endpoints the doors call: create (validate every entry, route
  it, forward or store), retrieve, list, cancel, delete, results.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .runner import BatchRunner
from .service import PREFIX, Batches, database_path, default_dir
from .store import BatchRecord, BatchStore

if TYPE_CHECKING:
    from .redis import RedisStore
    from .sqlite import SqliteStore

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

# The stores load sqlite3 or the Redis client: imported when first named, so a sidecar that
# never sees a batch does not load them (``Batches`` opens its store at the first batch).
_LAZY = {"RedisStore": ".redis", "SqliteStore": ".sqlite"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
