"""Benchmark harness: a fast fake Anthropic upstream, a load generator and an orchestrator.

Run it with ``python -m bench`` (or ``make bench``); see ``bench/__main__.py``.
"""

from __future__ import annotations
