"""The Files API, stored by the sidecar (issue 16).

- ``store``: the one interface file metadata lives behind (``FileStore``), with an in-memory
  implementation beside it; ``sqlite``: the embedded one, a table of the batches database.
- ``multipart``: the incremental multipart/form-data parser uploads stream through.
- ``mime``: the MIME type of an upload.
- ``service``: ``Files``, the endpoints the HTTP door calls (upload, list, retrieve, delete,
  download).
"""

from __future__ import annotations

from .service import PREFIX, Files
from .sqlite import SqliteFileStore
from .store import FilePage, FileRecord, FileStore, MemoryFileStore

__all__ = ["PREFIX", "FilePage", "FileRecord", "FileStore", "Files", "MemoryFileStore", "SqliteFileStore"]
