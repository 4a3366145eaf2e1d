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


def test_a_send_after_the_call_ended_is_not_an_error_with_a_traceback() -> None:
    # grpcio logs ERROR with a traceback when a handler's last send fails because the call's
    # deadline passed or its client left as it finished (found by the grpc_fuzz campaign).
    import logging

    from grpc._cython import cygrpc

    from sidecar.grpc.listener import CallEndedFilter

    try:
        raise cygrpc.ExecuteBatchError('Failed "execute_batch"')
    except cygrpc.ExecuteBatchError:
        record = logging.LogRecord(
            "grpc._cython.cygrpc", logging.ERROR, "x", 1, "%s raised by %s", ("E", "m"), sys.exc_info()
        )
    assert CallEndedFilter().filter(record) is False  # DEBUG is off for that logger
    assert record.levelno == logging.DEBUG and record.exc_info is None
    other = logging.LogRecord("grpc._cython.cygrpc", logging.ERROR, "x", 1, "other", (), None)
    assert CallEndedFilter().filter(other) is True and other.levelno == logging.ERROR
