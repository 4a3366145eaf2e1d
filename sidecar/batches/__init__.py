"""Message Batches, run or forwarded by the sidecar (issue 16).

- ``store``: the one interface batches live behind (``BatchStore``); ``sqlite``: its embedded
  implementation, a file under ``batches.dir``.
"""

from __future__ import annotations

from .sqlite import SqliteStore
from .store import BatchRecord, BatchStore

__all__ = ["BatchRecord", "BatchStore", "SqliteStore"]
