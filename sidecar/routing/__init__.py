"""Routing: model names to upstream targets."""

from __future__ import annotations

from .router import Router, is_glob

__all__ = ["Router", "is_glob"]
