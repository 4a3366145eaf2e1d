"""The gRPC listener: it serves the Messages service, or start-up fails loudly."""

from __future__ import annotations

import sys

import msgspec
import pytest

from sidecar.config import default_config
from sidecar.config.model import AdminListener, GrpcListener, HttpListener, Listeners
from sidecar.runtime import Runtime


def _grpc_only() -> Runtime:
    config = msgspec.structs.replace(
        default_config(),
        listeners=Listeners(http=HttpListener(enabled=False), grpc=GrpcListener(port=0)),
        admin=AdminListener(enabled=False),
    )
    return Runtime(config)


async def test_a_broken_servicer_import_fails_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import sidecar.grpc.servicer` raise ImportError, as a real
    # import error in the servicer (or anything it imports) would.
    monkeypatch.setitem(sys.modules, "sidecar.grpc.servicer", None)
    monkeypatch.delitem(sys.modules, "sidecar.grpc.listener", raising=False)
    runtime = _grpc_only()
    try:
        with pytest.raises(ImportError):
            await runtime.start()
        assert runtime.grpc_port is None and not runtime.ready
    finally:
        await runtime.stop(0)
