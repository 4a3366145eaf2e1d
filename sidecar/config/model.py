"""The typed configuration: frozen structs, every default documented, validated once at load.

A YAML file (see README) is decoded into ``Config``; unknown keys are errors, so a typo never
silently does nothing. Upstreams are a tagged union on ``provider``.
"""

from __future__ import annotations

import math
import ssl
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from .admission import AdmissionConfig
from .policy import HopConfig, RoutePolicyConfig

__all__ = [
    "AdminListener",
    "AnthropicUpstreamConfig",
    "BatchStoreConfig",
    "BatchesConfig",
    "Config",
    "FilesConfig",
    "GrpcListener",
    "HttpListener",
    "HttpUpstreamConfig",
    "LifecycleConfig",
    "Listeners",
    "MockUpstreamConfig",
    "OpenAIUpstreamConfig",
    "PacingConfig",
    "RedisBatchStore",
    "Route",
    "SqliteBatchStore",
    "TelemetryConfig",
    "Timeouts",
    "TracesConfig",
    "UpstreamConfig",
]

DEFAULT_MAX_BODY = 32 * 1024 * 1024  # the API's own limit for Messages and count_tokens


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class HttpListener(_Base, frozen=True):
    """The HTTP door: the Anthropic API on ``host:port`` (port 0 picks a free port), and the
    limits of the HTTP/1.1 server that serves it (``sidecar.http1.server``; the admin listener
    uses the same server with the same settings)."""

    enabled: bool = True
    port: int = 8080
    # "native": our own HTTP/1.1 server on httptools (sidecar.http1); "uvicorn": the previous
    # server, kept as a fallback while the native one proves itself (the limits below are then
    # uvicorn's own, except keep_alive_timeout).
    server: Literal["native", "uvicorn"] = "native"
    # Request line + header block, in bytes; larger: 431. SDK requests carry about 1 KiB of
    # headers; 16 KiB is h11's and Node's default (nginx takes 8 KiB per line, 32 KiB in all).
    max_header_bytes: int = 16384
    header_timeout: float = 10.0  # seconds for a request's whole header block (a drip is cut: 408)
    body_timeout: float = 30.0  # seconds of silence between request body chunks (408, then closed)
    keep_alive_timeout: float = 75.0  # seconds an idle keep-alive connection is kept open
    # Seconds a client may leave its answer unread (the sidecar's write buffer full); then the
    # connection is cut and the call, with its upstream request, cancelled (nginx's send_timeout).
    send_timeout: float = 60.0
    # API calls in flight on this listener; beyond it 529 overloaded_error with retry-after,
    # answered without running the request.
    max_in_flight: int = 1024
    # Where clients reach this door, as scheme://host[:port] (e.g. https://sidecar.example:8443
    # behind a proxy or a Service that maps the port): the origin of the URLs the gRPC door hands
    # out (a batch's results_url), since gRPC has no Host header to take it from. None:
    # http://{listeners.host}:{the bound port}, loopback for a wildcard host. The HTTP door itself
    # keeps using each request's Host header.
    public_origin: str | None = None

    def __post_init__(self) -> None:
        if self.public_origin is not None:
            _check_origin(self.public_origin)
        if not 512 <= self.max_header_bytes <= 1024 * 1024:
            raise ValueError(
                f"max_header_bytes: must be between 512 and 1048576, got {self.max_header_bytes!r}"
            )
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "send_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of seconds, got {value!r}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight: must be at least 1, got {self.max_in_flight!r}")


def _check_origin(origin: str) -> None:
    """``origin`` is scheme://host[:port] and nothing more (no path, query or credentials)."""
    try:
        parts = urlsplit(origin)
        fits = parts.port is None or parts.port > 0  # .port raises ValueError for no port number
    except ValueError:
        fits = False
    if not (
        fits
        and parts.scheme in ("http", "https")
        and parts.hostname
        and "@" not in parts.netloc
        and origin == f"{parts.scheme}://{parts.netloc}"
    ):
        raise ValueError(f"public_origin: must be http(s)://host[:port] and nothing more, got {origin!r}")


class GrpcListener(_Base, frozen=True):
    """The gRPC door (service ``sidecar.messages.v1.Messages``, health and reflection)."""

    enabled: bool = True
    port: int = 50051
    # "native": our own gRPC server on our HTTP/2 (sidecar.grpc.native, sidecar.http2);
    # "grpcio": grpc.aio, the previous server, kept as a fallback while the native one proves
    # itself.
    server: Literal["native", "grpcio"] = "native"


class Listeners(_Base, frozen=True):
    host: str = "127.0.0.1"  # API listeners stay on loopback by default
    http: HttpListener = HttpListener()
    grpc: GrpcListener = GrpcListener()
    max_body_bytes: int = DEFAULT_MAX_BODY  # larger bodies get 413 request_too_large (both doors)


class AdminListener(_Base, frozen=True):
    """The admin listener, apart from the API ports: ``/metrics`` (Prometheus), ``/healthz``,
    ``/readyz``. Port 0 picks a free port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9901


class TracesConfig(_Base, frozen=True):
    """OpenTelemetry traces over OTLP/gRPC. Off unless an endpoint is set here or in
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``; every other
    exporter, sampler and batching setting comes from the standard ``OTEL_*`` variables."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:4317 (this wins over the environment)
    service_name: str | None = None  # default: $OTEL_SERVICE_NAME, else "messages-sidecar"


class TelemetryConfig(_Base, frozen=True):
    metrics: bool = True  # Prometheus instruments, served on the admin listener's /metrics
    # Distinct model names that glob routes may add to the `model` label (exact routes' names
    # always have their own); later names are counted under `model="other"`.
    model_label_limit: int = 50
    traces: TracesConfig = TracesConfig()
    # One JSON line per request on stderr (request id, door, model, upstream, status, tokens,
    # durations; never keys or content).
    request_log: bool = False


class Timeouts(_Base, frozen=True):
    connect: float = 10.0  # seconds to open a connection to the upstream
    read: float = 600.0  # seconds of silence from the upstream before giving up (the SDK's default)
    # Seconds from the request sent to the response's headers (None: `read` bounds that wait too).
    first_byte: float | None = None
    # Seconds for the whole exchange, connection to the body's last byte (None: no bound; a
    # long stream may run as long as it keeps talking).
    total: float | None = None


class PacingConfig(_Base, frozen=True):
    """Upstream-aware admission (``sidecar.admission.pacing``): requests are held back, paced,
    when the upstream's ``anthropic-ratelimit-*`` headers say its limits are nearly spent, or
    after its ``retry-after``, instead of being sent to be refused."""

    enabled: bool = True
    reserve: float = 0.05  # fraction of each upstream limit kept free (other replicas, clients)
    max_wait: float = 10.0  # seconds a request may be held; longer: 429 with retry-after at once

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reserve) and 0 <= self.reserve <= 0.5):
            raise ValueError(f"reserve: must be between 0 and 0.5, got {self.reserve!r}")
        if not (math.isfinite(self.max_wait) and self.max_wait >= 0):
            raise ValueError(f"max_wait: must be >= 0, got {self.max_wait!r}")


class HttpUpstreamConfig(_Base, frozen=True):
    """How the sidecar reaches an upstream over HTTP (the anthropic and openai providers); the
    client session is built from these in ``sidecar.upstreams.session``."""

    timeouts: Timeouts = Timeouts()
    max_connections: int = 256  # pooled keep-alive connections to this upstream
    # A PEM file of the CAs that sign this upstream's certificate (a mesh's or a company's own CA),
    # trusted instead of the system's store. TLS verification is always on.
    ca_bundle: str | None = None
    # Egress proxy, http://host:port (or http://user:password@host:port): wins over HTTPS_PROXY /
    # HTTP_PROXY / NO_PROXY, which decide when this is not set.
    proxy: str | None = None
    # The HTTP client: "native" (sidecar.http1, HTTP/1.1 on httptools) or "aiohttp" (the previous
    # one, kept while the native client proves itself; it ignores timeouts.first_byte).
    client: Literal["native", "aiohttp"] = "native"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context that trusts ``ca_bundle``'s CAs (None: the system's defaults).
        Raises OSError or ssl.SSLError when the file cannot be read or holds no certificate."""
        if self.ca_bundle is None:
            return None
        return ssl.create_default_context(cafile=self.ca_bundle)


class AnthropicUpstreamConfig(HttpUpstreamConfig, frozen=True, tag_field="provider", tag="anthropic"):
    """The real Anthropic API, or anything that speaks it (another sidecar included)."""

    base_url: str = "https://api.anthropic.com"
    # Replaces the client's credentials when set; without it the client's own x-api-key /
    # Authorization headers are forwarded (a transparent proxy).
    api_key: str | None = None
    pacing: PacingConfig = PacingConfig()  # slow down before the upstream's rate limits refuse


class MockUpstreamConfig(_Base, frozen=True, tag_field="provider", tag="mock"):
    """The built-in deterministic mock model (no network, no key)."""

    words: int = 24  # answer length in words, unless a prompt directive says otherwise
    ttft_ms: float = 0.0  # delay before the first content delta
    gap_ms: float = 0.0  # delay between content deltas
    words_per_delta: int = 3
    thinking_words: int = 16  # length of the thinking block when thinking is on
    models: list[str] | None = None  # model ids it lists (None: its built-in list)


class OpenAIUpstreamConfig(HttpUpstreamConfig, frozen=True, tag_field="provider", tag="openai"):
    """An OpenAI-compatible ``/v1/chat/completions`` server (OpenAI, vLLM, xAI, llama.cpp, Ollama,
    gateways): Messages requests are translated to chat completions and back (README table)."""

    base_url: str = "https://api.openai.com"  # the sidecar appends /v1/chat/completions
    # Sent as `Authorization: Bearer`; without it the client's own key (x-api-key or bearer) is.
    api_key: str | None = None
    extra_headers: dict[str, str] = {}  # added to every upstream request (e.g. OpenAI-Organization)
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = (
        "max_tokens"  # OpenAI's o-series: the latter
    )
    send_top_k: bool = False  # vLLM takes `top_k`; OpenAI refuses it (dropped when false)
    send_reasoning_effort: bool = True  # thinking / output_config.effort -> `reasoning_effort`
    send_stream_options: bool = True  # `stream_options.include_usage` (true usage in streams)
    send_pdf: bool = False  # PDF documents as `file` parts (OpenAI); false: 400 for PDFs
    system_role: Literal["system", "developer"] = "system"  # "developer": OpenAI reasoning models
    ping_interval: float = 10.0  # seconds of upstream silence before a `ping` event
    response_model: Literal["requested", "upstream"] = "requested"  # the `model` answers report
    # From its x-ratelimit-* headers, translated to anthropic-ratelimit-* (sidecar.admission.pacing).
    pacing: PacingConfig = PacingConfig()


UpstreamConfig = AnthropicUpstreamConfig | MockUpstreamConfig | OpenAIUpstreamConfig


class Route(_Base, frozen=True):
    """Model name (exact, or a glob with * ? [...]) -> one upstream, optionally renamed; or,
    with ``policy``, ordered groups of weighted targets with retries, fallbacks and breakers
    (``sidecar.routing.policy``). A route has ``upstream`` or ``policy``, not both."""

    match: str
    upstream: str | None = None
    model: str | None = None  # the model name to ask the upstream for (default: as requested)
    policy: RoutePolicyConfig | None = None
    # With client keys (admission): send the client's own x-api-key / Authorization upstream
    # (e.g. to a peer sidecar that checks the same keys) instead of dropping it. Its upstreams
    # must not set api_key, which would replace it.
    forward_client_key: bool = False


class LifecycleConfig(_Base, frozen=True):
    """Shutdown and reload behaviour."""

    # On SIGTERM, serve until nothing is in flight or this many seconds pass, then end what is
    # left well-formed (an SSE error event, a 529, gRPC UNAVAILABLE).
    drain_timeout: float = 30.0
    # Reload routes and upstreams when the config file changes (SIGHUP always reloads).
    watch_config: bool = True
    watch_interval: float = 2.0  # seconds between checks of the file


class SqliteBatchStore(_Base, frozen=True, tag_field="kind", tag="sqlite"):
    """Batches in one SQLite file under ``batches.dir``: one sidecar process (and its restarts)."""


class RedisBatchStore(_Base, frozen=True, tag_field="kind", tag="redis"):
    """Batches in Redis, shared by every replica pointing at the same ``url`` and ``key_prefix``."""

    # redis://, rediss:// (TLS) or unix://. None: admission.backend's url (kind: redis), filled
    # in at load; without one it is required.
    url: str | None = None
    timeout: float = 5.0  # seconds for one Redis call (a create sends 1,000 entries per call)
    # Every Redis key starts with it; on a Redis Cluster put a hash tag in it ("{batches}:").
    key_prefix: str = "sidecar:batches:"

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url: must start with redis://, rediss:// or unix://, got {self.url!r}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout: must be positive, got {self.timeout!r}")
        if not self.key_prefix:
            raise ValueError("key_prefix: must not be empty")


BatchStoreConfig = SqliteBatchStore | RedisBatchStore


class BatchesConfig(_Base, frozen=True):
    """Message Batches (``sidecar.batches``): where batches are stored, and how the sidecar runs
    the ones it does not forward (entries on OpenAI-compatible upstreams, the mock, routes with
    a policy, mixed upstreams)."""

    # Where batches live: {kind: sqlite} (a file under `dir`, one process) or {kind: redis, url,
    # timeout, key_prefix} (shared by every replica; url defaults to admission.backend's).
    store: BatchStoreConfig = SqliteBatchStore()
    # The directory of the SQLite file (batches.sqlite3, with store kind sqlite: the batches and
    # the Files API's metadata; with kind redis both are in Redis). None:
    # $XDG_STATE_HOME/messages-sidecar (~/.local/state/messages-sidecar without it). The file is
    # created at first use.
    dir: str | None = None
    # Entries of local batches in flight at once, all batches together: low, so interactive
    # traffic keeps priority on the upstreams.
    concurrency: int = 4
    retention_days: float = 29.0  # results kept this long after a batch ends, then deleted
    expiry_hours: float = 24.0  # unfinished entries expire this long after the batch's creation
    # A claimed entry whose runner died (a SIGKILL) runs again after this many seconds; a live
    # runner renews its leases every third of it.
    lease_seconds: float = 60.0
    poll_interval: float = 1.0  # seconds between looks for work (cancels, expiry, new entries)
    max_requests: int = 100_000  # entries per batch (the API's limit)
    max_body_bytes: int = 256 * 1024 * 1024  # a create body's size (the API's limit)

    def __post_init__(self) -> None:
        if self.dir is not None and not self.dir.strip():
            raise ValueError("dir: must not be empty (omit it for the default)")
        if self.concurrency < 1:
            raise ValueError(f"concurrency: must be >= 1, got {self.concurrency}")
        for name in ("retention_days", "expiry_hours", "lease_seconds", "poll_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be positive, got {value!r}")
        if not 1 <= self.max_requests <= 100_000:
            raise ValueError(f"max_requests: must be between 1 and 100000, got {self.max_requests}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes: must be at least 1024, got {self.max_body_bytes}")


class FilesConfig(_Base, frozen=True):
    """The Files API (``sidecar.files``): stored by the sidecar, or forwarded to an Anthropic
    upstream as any other endpoint."""

    # "local": the sidecar stores uploads itself (metadata where batches are, in their SQLite file
    # or their Redis; contents on disk) and resolves file references on every route; "upstream":
    # /v1/files goes to the Anthropic upstream. None: "local" when the catch-all route ("*") has
    # no Anthropic upstream, else "upstream".
    store: Literal["local", "upstream"] | None = None
    # The directory of the file contents. None: files/ under the batches directory.
    dir: str | None = None
    max_bytes: int = 500 * 1024 * 1024  # the largest upload (the API's limit), enforced while reading

    def __post_init__(self) -> None:
        if self.dir is not None and not self.dir.strip():
            raise ValueError("dir: must not be empty (omit it for the default)")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {self.max_bytes}")


class Config(_Base, frozen=True):
    listeners: Listeners = Listeners()
    hops: HopConfig = HopConfig()  # sidecar chains: the hop header and its limit
    # Client keys and per-key limits, decoded and checked once at load (build_config). None: no
    # key store, the clients' own credentials are forwarded upstream.
    admission: AdmissionConfig | None = None
    # Without a key store the API listeners must stay on loopback; "none" is the explicit
    # choice to serve other addresses unauthenticated.
    auth: Literal["keys", "none"] | None = None
    lifecycle: LifecycleConfig = LifecycleConfig()
    batches: BatchesConfig = BatchesConfig()  # fixed at start-up: a reload keeps the running one
    files: FilesConfig = FilesConfig()  # fixed at start-up, like batches
    admin: AdminListener = AdminListener()
    telemetry: TelemetryConfig = TelemetryConfig()
    upstreams: dict[str, UpstreamConfig] = {}
    # Tried in order: exact names first (any position), then globs in the order written.
    routes: list[Route] = []
    # Alias -> model name, applied before routes (e.g. "sonnet": "claude-sonnet-4-6").
    aliases: dict[str, str] = {}
