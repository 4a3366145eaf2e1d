"""The Files API, stored by the sidecar (issue 16).

- ``store``: the one interface file metadata lives behind (``FileStore``), with an in-memory
  implementation beside it; ``sqlite``: the embedded one, a table of the batches database.
- ``multipart``: the incremental multipart/form-data parser uploads stream through.
- ``mime``: the MIME type of an upload.
"""

from __future__ import annotations

from .sqlite import SqliteFileStore
from .store import FilePage, FileRecord, FileStore, MemoryFileStore

__all__ = ["FilePage", "FileRecord", "FileStore", "MemoryFileStore", "SqliteFileStore"]
