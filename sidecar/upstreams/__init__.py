"""Upstream adapters: one module each behind the small interface in ``base``."""

from __future__ import annotations

from .base import ForwardRequest, Target, Upstream

__all__ = ["ForwardRequest", "Target", "Upstream"]
