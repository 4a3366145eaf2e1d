"""Fixtures of the file tests: the admission tests' real redis-server (one per module)."""

from tests.admission.conftest import redis_server

__all__ = ["redis_server"]
