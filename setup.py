"""The one thing pyproject.toml cannot say: which modules are compiled, and how.

With ``SIDECAR_NATIVE=1`` the modules in ``NATIVE`` (the request path: both HTTP/1.1 edges, the
HTTP door, the pipeline and its filters, the Anthropic adapter, answers and their event streams,
telemetry's per-request observers, upstream pacing, validation; the gRPC door's servicer, proto
codec and server, our HTTP/2 and its HPACK decoder) are compiled to C extensions by mypyc, mypy's
own compiler, from the same source: the strict typing ``make lint`` keeps is what it compiles
from. Without it, the package is pure Python, the same code; the compiled modules sit beside
their sources (``build_ext --inplace``) and Python loads them first.

Compiling type-checks the whole package, so it runs where the dev extras are installed and
without build isolation: ``make native`` (``make run``, ``make test``, ``make bench`` and ``make
reliability`` call it), or ``SIDECAR_NATIVE=1 pip wheel --no-build-isolation .`` for an image.

Compiled code differs from Python in ways the tests found; write compiled modules with them in
mind (``tests/test_native.py`` checks the two that can be read from the source):
- a compiled function checks its arguments' declared types when it is called (a ``dict[str,
  Any]`` parameter given a list raises ``TypeError``), and an attribute read after mypy narrowed
  it (``x.resp = resp``, then awaits, then ``x.resp``) is checked against the narrowed type: what
  takes untrusted values declares them ``object`` and checks them itself, as the validator does;
- a variable has one type: two ``except ... as exc`` of unrelated types in one function fail;
- an ``await`` inside ``finally``, while the caller handles an exception, raises that exception
  again (mypyc 2.4.1): cleanup that awaits goes in ``except BaseException: ...; raise`` and
  after the ``try``;
- msgspec reads a Struct's field annotations, which a compiled class does not keep: Structs live
  in uncompiled modules (``sidecar.telemetry.message``);
- async generators do not compile: the compiled modules' async iterators are classes (their
  ``aclose``, and ``__del__`` where a generator's ``finally`` did work, keep a generator's
  behaviour).

Left out on purpose: modules with async generators (``sidecar.grpc.streaming`` and the Batches
servicer: their streaming methods are async generators, as grpc.aio's fallback server wants
them); ``sidecar.grpc.convert``, whose converters promise an ``InvalidRequest`` for a value
that is not a JSON object (thin wrappers over the compiled codec); ``sidecar.errors``, whose
classes are subclassed by uncompiled code and override class attributes of uncompiled bases (a
compiled subclass of an uncompiled exception does not see its own class attributes). A compiled
class that uncompiled code subclasses says so (``mypyc_attr(allow_interpreted_subclasses=True)``:
the telemetry observers of ``sidecar.core.call``).

A compiled module's dataclass whose ``__init__`` runs per request writes it out (``Call``,
``Answer``): the generated keyword-only one would run interpreted. ``tests/test_native.py``
checks that a request runs no interpreted sidecar code: a call from compiled into interpreted
code costs more than the function it calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from setuptools import setup

NATIVE = [
    "sidecar/admission/pacing.py",
    "sidecar/core/aio.py",
    "sidecar/core/answer.py",
    "sidecar/core/call.py",
    "sidecar/core/credentials.py",
    "sidecar/core/estimate.py",
    "sidecar/core/ids.py",
    "sidecar/core/sse.py",
    "sidecar/core/validate.py",
    "sidecar/grpc/calls.py",
    "sidecar/grpc/codec.py",
    "sidecar/grpc/native.py",
    "sidecar/grpc/registry.py",
    "sidecar/grpc/servicer.py",
    "sidecar/hops.py",
    "sidecar/http/app.py",
    "sidecar/http1/client.py",
    "sidecar/http1/server.py",
    "sidecar/http1/timer.py",
    "sidecar/http2/hpack.py",
    "sidecar/http2/server.py",
    "sidecar/lifecycle.py",
    "sidecar/pipeline/filters.py",
    "sidecar/pipeline/pipeline.py",
    "sidecar/routing/router.py",
    "sidecar/telemetry/attempt.py",
    "sidecar/telemetry/live.py",
    "sidecar/telemetry/metrics.py",
    "sidecar/telemetry/registry.py",
    "sidecar/telemetry/request.py",
    "sidecar/upstreams/anthropic.py",
    "sidecar/upstreams/session.py",
]
# The compiled modules share one runtime library, kept inside the package (``sidecar/_native__mypyc``)
# so that an editable install finds it from any working directory.
GROUP = "sidecar._native"
LIBRARY = GROUP.rsplit(".", 1)[1] + "__mypyc"  # the runtime library's file name starts so


def compiled_sources(package: Path) -> list[Path]:
    """The sources in ``package`` that have a compiled module beside them (a build's, current or
    not), the runtime library aside. The tests and the bench read the build through this."""
    return [
        so.with_name(so.name.split(".", 1)[0] + ".py")
        for so in package.rglob("*.so")
        if not so.name.startswith(LIBRARY)
    ]


def ext_modules() -> list[Any]:
    if os.environ.get("SIDECAR_NATIVE") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(NATIVE, opt_level="3", group_name=GROUP))


if __name__ == "__main__":
    setup(ext_modules=ext_modules())
