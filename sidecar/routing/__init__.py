"""Routing: model names to upstream targets."""

from __future__ import annotations

from .router import Resolved, Router, is_glob

__all__ = ["Resolved", "Router", "is_glob"]
