"""The HTTP client of the HTTP adapters (anthropic, openai): one place that turns an upstream's
connection settings into an aiohttp session, and aiohttp's failures to connect into sidecar errors.

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
- ``timeouts``: connect and read for every request; ``connect_timeout`` (a route policy's
  ``timeouts.connect``, carried by ``Target.connect_timeout``) replaces connect for one request.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

from ..config.model import HttpUpstreamConfig
from ..errors import SidecarError, Timeout, UpstreamConnectError, UpstreamProtocolError

__all__ = ["UpstreamSession", "env_proxy"]

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
    """The pooled aiohttp session of one upstream, built on first use (and again after a close)."""

    __slots__ = (
        "_decompress",
        "_proxy_headers",
        "_session",
        "_skip_headers",
        "_timeout",
        "config",
        "name",
        "url",
    )

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
        self._decompress = auto_decompress
        self._skip_headers = skip_auto_headers
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=config.timeouts.connect, sock_read=config.timeouts.read
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxy_headers: dict[str, str] | None = None

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections,
                keepalive_timeout=60,
                enable_cleanup_closed=True,
                ssl=self.config.tls_context() or True,
            )
            proxy, self._proxy_headers = _proxy_parts(self.config.proxy or env_proxy(self.url))
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                proxy=proxy,
                auto_decompress=self._decompress,
                skip_auto_headers=self._skip_headers,
            )
            self._session = session
        return session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | None = None,
        connect_timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request and return the response once its headers arrived. Failures before
        that raise ``Timeout``, ``UpstreamConnectError`` (TLS and proxy failures named as such)
        or ``UpstreamProtocolError``."""
        session = self._client()
        timeout = self._timeout
        if connect_timeout is not None:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=connect_timeout, sock_read=self.config.timeouts.read
            )
        proxy_headers = self._proxy_headers
        if proxy_headers is not None and url.startswith("http:"):
            # No tunnel: the request itself goes to the proxy, so it carries the credentials.
            headers, proxy_headers = {**headers, **proxy_headers}, None
        try:
            return await session.request(
                method,
                url,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
                proxy_headers=proxy_headers,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._error(exc, connect_timeout or self.config.timeouts.connect) from exc

    def _error(self, exc: BaseException, connect: float) -> SidecarError:
        name = self.name
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return Timeout(f"upstream {name!r}: no connection within {connect:g} s")
        if isinstance(exc, TimeoutError):
            return Timeout(f"upstream {name!r} did not answer in time")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            cert = exc.certificate_error
            reason = getattr(cert, "verify_message", None) or str(cert)
            return UpstreamConnectError(
                f"upstream {name!r}: TLS certificate verification failed: {reason} "
                "(an upstream with a private CA needs its ca_bundle)"
            )
        if isinstance(exc, aiohttp.ClientSSLError):
            return UpstreamConnectError(f"upstream {name!r}: TLS handshake failed: {exc}")
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            return UpstreamConnectError(
                f"upstream {name!r}: the proxy answered HTTP {exc.status} {exc.message}"
            )
        if isinstance(exc, aiohttp.ClientConnectionError):
            return UpstreamConnectError(f"upstream {name!r} unreachable: {exc}")
        return UpstreamProtocolError(f"upstream {name!r}: {exc}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
