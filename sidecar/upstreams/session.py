"""The HTTP client of the HTTP adapters (anthropic, openai): one place that turns an upstream's
connection settings into the parameters of its client (``sidecar.http1.client.HTTPClient``, our
HTTP/1.1 pool on httptools; or aiohttp, with ``client: aiohttp``), and the client's failures into
sidecar errors that name the upstream. Both clients present one response interface
(``UpstreamResponse``), so the adapters never see which one served them.

What it applies (``HttpUpstreamConfig``, README "Upstream connections"):

- ``ca_bundle``: the TLS context trusts that PEM file's CAs instead of the system's; verification
  is never switched off.
- ``proxy``, else the environment's ``HTTPS_PROXY`` / ``HTTP_PROXY`` (by the base URL's scheme)
  unless ``NO_PROXY`` names its host, read when the session is built: https upstreams are
  reached through a CONNECT tunnel, http ones by absolute-form requests to the proxy. The
  environment is read with the standard library's rules (``urllib.request.getproxies`` /
  ``proxy_bypass``, which aiohttp's ``trust_env`` uses too): lower-case names win, ``NO_PROXY``
  takes host names, ``.suffix`` or ``host:port`` entries and ``*``, no CIDR ranges, and loopback
  is proxied unless listed. Not by ``trust_env`` itself: it also reads ``~/.netrc`` on every
  request and sends the upstream the credentials it finds there for its host.
- ``timeouts``: connect, first_byte, read and total for every request; ``connect_timeout`` (a
  route policy's ``timeouts.connect``, carried by ``Target.connect_timeout``) replaces connect
  for one request.
- Response bodies are never decompressed by the native client: both adapters ask for
  ``accept-encoding: identity``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

from ..config.model import HttpUpstreamConfig
from ..errors import SidecarError, Timeout, UpstreamConnectError, UpstreamProtocolError
from ..http1.client import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimeout,
    Headers,
    HTTPClient,
    ProtocolError,
    ProxyRefused,
    ResponseTimeout,
    TLSFailed,
)

if TYPE_CHECKING:
    from .session_aiohttp import AiohttpSession

__all__ = [
    "ConnectionBroken",
    "ProtocolError",
    "ResponseTimeout",
    "UpstreamResponse",
    "UpstreamSession",
    "env_proxy",
]

KEEPALIVE = 60.0  # seconds an idle upstream connection is kept


class UpstreamResponse(Protocol):
    """What the adapters use of a response (``sidecar.http1.client.Response`` is one). Body reads
    raise ``ResponseTimeout``, ``ConnectionBroken`` (after the bytes that did arrive) or
    ``ProtocolError``; the adapters name the upstream in what they raise instead."""

    status: int
    reason: str
    headers: Headers

    @property
    def at_eof(self) -> bool: ...

    async def read(self, limit: int | None = None) -> bytes: ...

    async def read_chunk(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...

    def release(self) -> None: ...

    async def __aenter__(self) -> UpstreamResponse: ...

    async def __aexit__(self, *exc: object) -> None: ...


log = logging.getLogger("sidecar.upstreams.session")


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (None: connect directly)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if not host or proxy_bypass(host):
        return None
    proxy = getproxies().get(parts.scheme)
    if proxy is not None and not proxy.startswith("http://"):
        log.warning("ignoring %s_PROXY: only http:// proxies are supported", parts.scheme.upper())
        return None
    return proxy


def _proxy_parts(proxy: str | None) -> tuple[str | None, dict[str, str] | None]:
    """The proxy URL without credentials, and the Proxy-Authorization header they make."""
    parts = urlsplit(proxy) if proxy else None
    if parts is None or parts.username is None:
        return proxy, None
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return bare, {"Proxy-Authorization": "Basic " + base64.b64encode(credentials).decode()}


class UpstreamSession:
    """The connection pool of one upstream, built on first use (and again after a close)."""

    __slots__ = ("_aiohttp", "_native", "config", "name", "url")

    def __init__(
        self,
        name: str,
        config: HttpUpstreamConfig,
        url: str,
        *,
        auto_decompress: bool = True,
        skip_auto_headers: tuple[str, ...] = ("User-Agent",),
    ) -> None:
        self.name = name
        self.config = config
        self.url = url  # the upstream's base URL: the proxy the environment names depends on it
        self._native: HTTPClient | None = None
        self._aiohttp: AiohttpSession | None = None
        if config.client == "aiohttp":
            # Imported only when chosen: aiohttp and its dependencies are ~7 MB of a process
            # that otherwise never uses them.
            from .session_aiohttp import AiohttpSession

            self._aiohttp = AiohttpSession(
                name,
                config,
                url,
                auto_decompress,
                skip_auto_headers,
                keepalive=KEEPALIVE,
                proxy=lambda: _proxy_parts(config.proxy or env_proxy(url)),
            )

    def _client(self) -> HTTPClient:
        client = self._native
        if client is None:
            config = self.config
            timeouts = config.timeouts
            client = self._native = HTTPClient(
                ssl=config.tls_context(),
                proxy=config.proxy or env_proxy(self.url),
                max_connections=config.max_connections,
                keepalive=KEEPALIVE,
                connect_timeout=timeouts.connect,
                first_byte_timeout=timeouts.first_byte,
                read_timeout=timeouts.read,
                total_timeout=timeouts.total,
            )
        return client

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | AsyncIterable[bytes] | None = None,
        connect_timeout: float | None = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        """Send one request and return the response once its headers arrived (``data``: the body,
        or its pieces, sent as they come: chunked, or with ``length``, the pieces' total, as a
        content-length body). Failures before that raise ``Timeout``, ``UpstreamConnectError``
        (TLS and proxy failures named as such) or ``UpstreamProtocolError``."""
        if self._aiohttp is not None:
            return await self._aiohttp.request(method, url, headers, data, connect_timeout, length)
        try:
            return await self._client().request(
                method, url, headers=headers, body=data, connect_timeout=connect_timeout, length=length
            )
        except (ConnectFailed, ConnectTimeout, ResponseTimeout, ConnectionBroken, ProtocolError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: SidecarError) -> SidecarError:
        name = self.name
        if isinstance(exc, ConnectTimeout):
            return Timeout(f"upstream {name!r}: no connection within {exc.seconds:g} s")
        if isinstance(exc, ResponseTimeout):
            return self.timeout(exc, "did not answer in time")
        if isinstance(exc, TLSFailed):
            if exc.verify_message is not None:
                return UpstreamConnectError(
                    f"upstream {name!r}: TLS certificate verification failed: {exc.verify_message} "
                    "(an upstream with a private CA needs its ca_bundle)"
                )
            return UpstreamConnectError(f"upstream {name!r}: {exc.message}")
        if isinstance(exc, ProxyRefused):
            return UpstreamConnectError(f"upstream {name!r}: {exc.message}")
        if isinstance(exc, ConnectionBroken):
            # A connect error, as aiohttp's "Server disconnected" was.
            return UpstreamConnectError(f"upstream {name!r} {exc.message}")
        if isinstance(exc, ConnectFailed):
            return UpstreamConnectError(f"upstream {name!r} unreachable: {exc.message}")
        return UpstreamProtocolError(f"upstream {name!r}: {exc.message}")

    def timeout(self, exc: ResponseTimeout, words: str) -> Timeout:
        """A response timeout named for this upstream: ``words`` say what a silence did
        ("went silent mid-stream"); the total timeout says itself."""
        if exc.phase == "total":
            return Timeout(f"upstream {self.name!r}: no complete answer within {exc.seconds:g} s")
        return Timeout(f"upstream {self.name!r} {words}")

    def connections(self) -> tuple[int, int] | None:
        """(busy, idle) connections of the native client (None: none yet, or aiohttp's)."""
        return None if self._native is None else self._native.connections()

    async def aclose(self) -> None:
        if self._native is not None:
            await self._native.aclose()
            self._native = None
        if self._aiohttp is not None:
            await self._aiohttp.aclose()
