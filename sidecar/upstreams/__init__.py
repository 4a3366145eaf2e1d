"""Upstream adapters, one module per provider (anthropic, openai, mock), behind the interface in
``sidecar.core.upstream``; ``registry`` builds them from config."""
