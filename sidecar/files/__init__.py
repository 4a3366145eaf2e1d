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

from .redis import RedisFileStore
from .resolve import FileLookup, has_file_sources, inline_files
from .service import PREFIX, Files
from .sqlite import SqliteFileStore
from .store import FilePage, FileRecord, FileStore, MemoryFileStore

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
