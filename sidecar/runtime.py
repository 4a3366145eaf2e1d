"""One process, two doors: our HTTP/1.1 server (``sidecar.http1``; uvicorn behind
``listeners.http.server: uvicorn``) and grpc.aio (gRPC) on the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .batches import Batches, database_path
from .config import Config, load_config
from .config.model import HttpListener, Listeners
from .core import Upstream
from .errors import ConfigError
from .files import Files
from .http.admin import AdminApp
from .http.app import HttpApp
from .http1.listen import bind_socket
from .http1.server import HttpServer, ServerLimits
from .lifecycle import ConfigWatcher, Lifecycle
from .pipeline import Pipeline
from .telemetry import Telemetry, build_telemetry

__all__ = ["Runtime", "bind_socket", "http_origin", "serve"]

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("sidecar")


class _Listener(Protocol):
    async def shutdown(self, grace: float) -> None: ...


# A wildcard bind answers on loopback too: the address a client on the same host (the pod's app,
# for a sidecar) reaches it at.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def http_origin(listeners: Listeners, port: int | None) -> str:
    """Where clients reach the HTTP door bound to ``port``: ``listeners.http.public_origin``, else
    http://{listeners.host}:{port} (loopback for a wildcard host); "" when the door is off."""
    if port is None:
        return ""
    if listeners.http.public_origin is not None:
        return listeners.http.public_origin
    return f"http://{_hostport(_LOOPBACK.get(listeners.host, listeners.host), port)}"


def _announce(line: str) -> None:
    print(line, flush=True)


class Runtime:
    """Starts and stops the listeners around one ``Pipeline`` (config snapshot)."""

    def __init__(
        self,
        config: Config,
        config_path: str | None = None,
        loader: Callable[[], Config] | None = None,
        *,
        adapters: Mapping[str, Upstream] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path  # reloaded on SIGHUP and when it changes
        # How a reload reads the file: the command line's loader applies its flags (ports, host,
        # drain timeout) and its checks (the loopback rule) again.
        self._load = loader or (lambda: load_config(config_path or ""))
        # Adapters given in process (``sidecar.upstreams.handler``) replace the configured ones,
        # in every config snapshot.
        self._adapters = adapters
        # Files API: the sidecar's own store (metadata beside the batches, in their SQLite file or
        # their Redis), fixed at start-up.
        self.files = Files(
            config.files, database=database_path(config.batches), batches_store=config.batches.store
        )
        self.lifecycle = Lifecycle(Pipeline(config, adapters=adapters, files=self.files))
        # Process-wide (it outlives config snapshots): metrics, traces, or the no-op.
        self.telemetry: Telemetry = build_telemetry(config)
        # Breaker states of whichever config snapshot is current, read at each scrape.
        self.telemetry.watch_breakers(lambda: self.current().breaker_states())
        self.telemetry.watch_admission(lambda: (self.current().admission, self.current().pacers))
        self.telemetry.watch_upstreams(lambda: self.current().upstreams.values())
        # Message Batches: the store and the runner outlive config snapshots (fixed at start-up).
        self.batches = Batches(config.batches, self.lifecycle, telemetry=self.telemetry)
        self._ready = False
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self.admin_port: int | None = None
        self._http: _Listener | None = None
        self._admin: _Listener | None = None
        self._grpc: Any = None
        self._stop = asyncio.Event()

    @property
    def ready(self) -> bool:
        """What /readyz says; ``sidecar_ready`` follows it."""
        return self._ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready = value
        self.telemetry.set_ready(value)

    def current(self) -> Pipeline:
        return self.lifecycle.current

    async def reload(self) -> bool:
        """Load the config file again; new calls get the new routes and upstreams, calls in
        flight keep theirs. An invalid file is refused (a log line, a metric), the old stays."""
        if self.config_path is None:
            log.warning("reload: the sidecar was started without --config; nothing to reload")
            return False
        try:
            new = self._load()
            pipeline = Pipeline(new, previous=self.current(), adapters=self._adapters)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            self.telemetry.config_reload("error")
            return False
        fixed = {
            "listeners": new.listeners != self.config.listeners,
            "admin": new.admin != self.config.admin,
            "telemetry": new.telemetry != self.config.telemetry,
            "batches": new.batches != self.config.batches,
            "files": new.files != self.config.files,
        }
        for section, changed in fixed.items():
            if changed:
                log.warning("reload: %s changed; it applies at the next restart", section)
        self.config = new
        self.lifecycle.swap(pipeline)
        self.telemetry.config_reload("ok")
        log.warning(
            "reload: config %s applied (%d upstreams, %d routes)",
            self.config_path,
            len(new.upstreams),
            len(new.routes),
        )
        return True

    async def start(self) -> None:
        listeners = self.config.listeners
        host = listeners.host
        admin = self.config.admin
        if admin.enabled:
            # First, so /healthz answers (and /readyz says 503) while the doors start.
            try:
                sock = bind_socket(admin.host, admin.port)
            except OSError as exc:
                where = _hostport(admin.host, admin.port)
                raise OSError(exc.errno, f"admin listener {where}: {exc.strerror or exc}") from None
            self.admin_port = sock.getsockname()[1]
            self._admin = await _serve_asgi(
                AdminApp(self.telemetry, lambda: self.ready), sock, "admin", listeners.http
            )
            _announce(f"sidecar admin listening on http://{_hostport(admin.host, self.admin_port)}")
        self.batches.start()  # resumes the batches of an earlier run
        if listeners.http.enabled:
            sock = bind_socket(host, listeners.http.port)
            self.http_port = sock.getsockname()[1]
            app = HttpApp(
                self.current,
                max_body=listeners.max_body_bytes,
                ready=lambda: self.ready,
                telemetry=self.telemetry,
                lifecycle=self.lifecycle,
                batches=self.batches,
                files=self.files,
            )
            self._http = await _serve_asgi(
                app, sock, "HTTP", listeners.http, max_body=app.max_request_body, cancel_on_disconnect=True
            )
            _announce(f"sidecar http listening on http://{_hostport(host, self.http_port)}")
        if listeners.grpc.enabled:
            from .grpc.listener import start_grpc

            self._grpc, self.grpc_port = await start_grpc(
                self.lifecycle,
                self.telemetry,
                host,
                listeners.grpc.port,
                listeners.max_body_bytes,
                batches=self.batches,
                http_origin=http_origin(listeners, self.http_port),
                server=listeners.grpc.server,
            )
            _announce(f"sidecar grpc listening on {_hostport(host, self.grpc_port)}")
        if self.current().uses_mock:
            _announce(
                "WARNING: answers come from the built-in mock model, not a real model. "
                "Use --upstream URL or --config FILE to proxy a real API."
            )
        self.ready = True

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self, grace: float = 5.0) -> None:
        self.ready = False
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._http is not None:
            # Stops accepting, closes idle connections, lets answers in flight finish (busy
            # keep-alive connections close after theirs), cuts what remains after the grace.
            await self._http.shutdown(grace + 1)
        if self._admin is not None:
            # Last: readiness says 503 through the drain above.
            await self._admin.shutdown(2)
        await self.batches.aclose()  # running entries give their leases back
        await self.files.aclose()
        await self.lifecycle.close()
        await self.telemetry.aclose()


async def _serve_asgi(
    app: Any,
    sock: socket.socket,
    what: str,
    settings: HttpListener,
    *,
    max_body: int | None = None,
    cancel_on_disconnect: bool = False,
) -> _Listener:
    """Serve ``app`` on ``sock`` (on this loop) with the server ``settings`` name; returns once
    it accepts."""
    if settings.server == "uvicorn":
        return await _UvicornListener.start(app, sock, what, settings)
    limits = ServerLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        send_timeout=settings.send_timeout,
        max_in_flight=settings.max_in_flight,
    )
    if max_body is not None:
        limits = dataclasses.replace(limits, max_body_bytes=max_body)
    server = HttpServer(app, limits, cancel_on_disconnect=cancel_on_disconnect)
    await server.start(sock)
    return server


class _UvicornListener:
    """uvicorn on this loop (``listeners.http.server: uvicorn``), imported only then."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @classmethod
    async def start(
        cls, app: Any, sock: socket.socket, what: str, settings: HttpListener
    ) -> _UvicornListener:
        import uvicorn

        class _Uvicorn(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                # The runtime owns the signals (drain, reload); uvicorn must not take them.
                yield

        config = uvicorn.Config(
            app,
            interface="asgi3",
            http="httptools",
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_keep_alive=int(settings.keep_alive_timeout),
        )
        server = _Uvicorn(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"the {what} listener stopped during start-up")
            await asyncio.sleep(0.005)
        return cls(server, task)

    async def shutdown(self, grace: float) -> None:
        self._server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        if not self._task.done():
            self._server.force_exit = True
            await self._task


def _hostport(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(
    config: Config, config_path: str | None = None, loader: Callable[[], Config] | None = None
) -> None:
    """Run until SIGTERM/SIGINT, then drain; SIGHUP (or a changed config file) reloads
    (``loader`` reads it, default ``load_config(config_path)``)."""
    runtime = Runtime(config, config_path, loader)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.request_stop)
    reloads: set[asyncio.Task[bool]] = set()

    def reload_soon() -> None:
        task = loop.create_task(runtime.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_soon)
    try:
        await runtime.start()
    except OSError as exc:
        print(f"sidecar: cannot listen: {exc.strerror or exc}", file=sys.stderr, flush=True)
        await runtime.stop(0)
        raise SystemExit(1) from None
    watcher: asyncio.Task[None] | None = None
    if config_path is not None and config.lifecycle.watch_config:
        watcher = loop.create_task(
            ConfigWatcher(config_path, runtime.reload, config.lifecycle.watch_interval).run()
        )
    await runtime.wait()
    # Draining: not ready at once, but still serving what the local app sends, until nothing is
    # in flight or the drain timeout passes; then what is left ends well-formed.
    runtime.ready = False
    if watcher is not None:
        watcher.cancel()
    drained = await runtime.lifecycle.drain(runtime.config.lifecycle.drain_timeout)
    log.warning("drained (%s); stopping", "all calls finished" if drained else "calls cut at the deadline")
    await runtime.stop(grace=1.0)
