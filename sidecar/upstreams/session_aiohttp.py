"""The previous upstream client, aiohttp, behind ``client: aiohttp`` (``UpstreamSession``
imports this module only when an upstream chooses it): the same ``UpstreamResponse`` interface
and the same sidecar errors as the native client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable

import aiohttp

from ..config.model import HttpUpstreamConfig
from ..errors import SidecarError, Timeout, UpstreamConnectError, UpstreamProtocolError
from ..http1.client import ConnectionBroken, Headers, ResponseTimeout

log = logging.getLogger("sidecar")


def _buffered(resp: aiohttp.ClientResponse) -> bytes:
    """Bytes received but not yet read when the connection broke (aiohttp keeps them privately
    and raises before handing them over)."""
    buffer = getattr(resp.content, "_buffer", None)
    return b"".join(bytes(chunk) for chunk in buffer) if buffer else b""


class AiohttpResponse:
    """An aiohttp response behind the ``UpstreamResponse`` interface."""

    __slots__ = ("_error", "_read", "_resp", "headers", "reason", "status")

    def __init__(self, resp: aiohttp.ClientResponse, read_timeout: float) -> None:
        self._resp = resp
        self._read = read_timeout
        self._error: SidecarError | None = None
        self.status = resp.status
        self.reason = resp.reason or ""
        self.headers = Headers([(k.lower(), v) for k, v in resp.headers.items()])

    @property
    def at_eof(self) -> bool:
        return self._resp.content.at_eof()

    async def read(self, limit: int | None = None) -> bytes:
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            chunk = await (self.read_chunk() if limit is None else self._limited(limit - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def _limited(self, n: int) -> bytes:
        if self._error is None:
            try:
                return await self._resp.content.read(n)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self._fail(exc)
        return await self.read_chunk()

    async def read_chunk(self) -> bytes:
        if self._error is None:
            try:
                return await self._resp.content.readany()
            except (TimeoutError, aiohttp.ClientError) as exc:
                leftover = self._fail(exc)
                if leftover:
                    return leftover
        assert self._error is not None
        raise self._error

    def _fail(self, exc: BaseException) -> bytes:
        if isinstance(exc, TimeoutError):
            self._error = ResponseTimeout(
                f"no data within {self._read:g} s", phase="read", seconds=self._read
            )
            return b""
        self._error = ConnectionBroken(f"the connection broke mid-body: {exc}", headers_received=True)
        return _buffered(self._resp)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await self.read_chunk():
                yield chunk
        finally:
            if not self.at_eof:
                self.close()

    def close(self) -> None:
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()

    def release(self) -> None:
        self._resp.release()

    async def __aenter__(self) -> AiohttpResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class AiohttpSession:
    """The pooled aiohttp session of one upstream (``client: aiohttp``)."""

    __slots__ = (
        "_decompress",
        "_proxy_headers",
        "_session",
        "_skip_headers",
        "_keepalive",
        "_proxy",
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
        auto_decompress: bool,
        skip_auto_headers: tuple[str, ...],
        *,
        keepalive: float,
        proxy: Callable[[], tuple[str | None, dict[str, str] | None]],
    ) -> None:
        self.name = name
        self._keepalive = keepalive
        self._proxy = proxy  # the proxy URL and its Proxy-Authorization, read at each (re)build
        self.config = config
        self.url = url
        self._decompress = auto_decompress
        self._skip_headers = skip_auto_headers
        self._timeout = aiohttp.ClientTimeout(
            total=config.timeouts.total, connect=config.timeouts.connect, sock_read=config.timeouts.read
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxy_headers: dict[str, str] | None = None

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections,
                keepalive_timeout=self._keepalive,
                enable_cleanup_closed=True,
                ssl=self.config.tls_context() or True,
            )
            proxy, self._proxy_headers = self._proxy()
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
        headers: dict[str, str],
        data: bytes | AsyncIterable[bytes] | None,
        connect_timeout: float | None,
        length: int | None = None,
    ) -> AiohttpResponse:
        session = self._client()
        if length is not None and not isinstance(data, (bytes, type(None))):
            headers = {**headers, "Content-Length": str(length)}  # aiohttp then does not chunk
        timeout = self._timeout
        if connect_timeout is not None:
            timeout = aiohttp.ClientTimeout(
                total=self.config.timeouts.total, connect=connect_timeout, sock_read=self.config.timeouts.read
            )
        proxy_headers = self._proxy_headers
        if proxy_headers is not None and url.startswith("http:"):
            # No tunnel: the request itself goes to the proxy, so it carries the credentials.
            headers, proxy_headers = {**headers, **proxy_headers}, None
        try:
            resp = await session.request(
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
        return AiohttpResponse(resp, self.config.timeouts.read)

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
