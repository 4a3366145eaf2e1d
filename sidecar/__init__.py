"""messages-sidecar: the Anthropic Messages API on localhost, over HTTP and gRPC."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
