"""The Files API, stored by the sidecar (issue 16).

- ``store``: the one interface file metadata lives behind (``FileStore``), with an in-memory
  implementation beside it; ``sqlite``: the embedded one, a table of the batches database;
  ``redis``: the one replicas share, in the batches' Redis.
- ``multipart``: the incremental multipart/form-data parser uploads stream through.
- ``service``: ``Files``, the endpoints the HTTP door calls (upload, list, retrieve, delete,
  download) and the lookups that resolve file references.
- ``resolve``: file references in a Messages body made inline sources.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .resolve import FileLookup, has_file_sources, inline_files
from .service import PREFIX, Files
from .store import FilePage, FileRecord, FileStore, MemoryFileStore

if TYPE_CHECKING:
    from .redis import RedisFileStore
    from .sqlite import SqliteFileStore

__all__ = [
    "PREFIX",
    "FileLookup",
    "FilePage",
    "FileRecord",
    "FileStore",
    "Files",
    "MemoryFileStore",
    "RedisFileStore",
    "SqliteFileStore",
    "has_file_sources",
    "inline_files",
]

# The stores load sqlite3 or the Redis client: imported when first named, so a sidecar that
# never sees a file does not load them (``Files`` opens its store at the first upload).
_LAZY = {"RedisFileStore": ".redis", "SqliteFileStore": ".sqlite"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
