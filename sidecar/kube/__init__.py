"""Kubernetes helpers: ``sidecar inject`` and ``sidecar wait-ready``."""

from __future__ import annotations

from .inject import InjectError, InjectOptions, inject_documents, inject_yaml

__all__ = ["InjectError", "InjectOptions", "inject_documents", "inject_yaml"]
