"""The batch and file stores load sqlite3 (or the Redis client) at their first use, not when the
sidecar starts: a sidecar that never sees a batch or a file does not carry them (issue 13: import
only what the config uses). Checked in fresh interpreters; this one has them from other tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _probe(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_started_runtime_loads_no_store_until_the_first_batch(tmp_path: Path) -> None:
    _probe(
        "import asyncio, sys\n"
        "from sidecar.config.load import build_config\n"
        "from sidecar.runtime import Runtime\n"
        f"cfg = build_config({{'upstreams': {{'m': {{'provider': 'mock'}}}}, 'routes': [{{'match': '*',"
        f" 'upstream': 'm'}}], 'batches': {{'dir': {str(tmp_path)!r}}},"
        " 'listeners': {'http': {'port': 0}, 'grpc': {'port': 0}}, 'admin': {'enabled': False}})\n"
        "async def main():\n"
        "    rt = Runtime(cfg)\n"
        "    await rt.start()\n"
        "    try:\n"
        "        loaded = [m for m in sys.modules if m == 'sqlite3' or m.endswith(('.sqlite', '.redis'))]\n"
        "        assert not loaded, loaded\n"
        "    finally:\n"
        "        await rt.stop(0)\n"
        "asyncio.run(main())\n"
    )


def test_the_lazy_names_still_import() -> None:
    _probe(
        "import sys\n"
        "from sidecar.batches import RedisStore, SqliteStore\n"
        "from sidecar.files import RedisFileStore, SqliteFileStore\n"
        "assert 'sqlite3' in sys.modules\n"
        "import sidecar.batches as b\n"
        "try:\n"
        "    b.NoSuchStore\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('an unknown name resolved')\n"
    )
