"""Model name -> route -> Target. Pure and synchronous given a config snapshot.

Aliases apply first; then an exact route wins over any glob; then globs in the order written.
Policies (weights, fallbacks, retries, breakers) will sit between the router and the adapters;
``Router.route`` stays the one place that picks the route.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from ..core import Target
from ..errors import NoRoute

if TYPE_CHECKING:  # the config imports routing policy types: no import cycle at run time
    from ..config import Route

__all__ = ["Router", "is_glob"]

_CACHE_LIMIT = 4096


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class Router:
    def __init__(self, routes: list[Route], aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})
        self._exact: dict[str, Route] = {}
        self._globs: list[tuple[re.Pattern[str], Route]] = []
        for route in routes:
            if is_glob(route.match):
                self._globs.append((re.compile(fnmatch.translate(route.match)), route))
            else:
                self._exact.setdefault(route.match, route)
        self._cache: dict[str, tuple[Route, str, Target]] = {}

    def match(self, model: str) -> tuple[Route, str]:
        """The route for a requested model name and the name after aliases; NoRoute if none."""
        route, name, _ = self._resolve(model)
        return route, name

    def route(self, model: str) -> Target:
        """The target for a requested model name (a policy route's primary target)."""
        return self._resolve(model)[2]

    def _resolve(self, model: str) -> tuple[Route, str, Target]:
        """Route, name after aliases and target, looked up once per model name (cached)."""
        found = self._cache.get(model)
        if found is not None:
            return found
        name = self.aliases.get(model, model)
        route = self._exact.get(name)
        if route is None:
            for pattern, candidate in self._globs:
                if pattern.match(name):
                    route = candidate
                    break
        if route is None:
            raise NoRoute(f"model: {model} (no route serves this model)")
        if route.upstream is not None:
            target = Target(upstream=route.upstream, model=route.model or name, route=route.match)
        else:
            assert route.policy is not None
            first = route.policy.groups[0].targets[0]
            target = Target(upstream=first.upstream, model=first.model or name, route=route.match)
        found = (route, name, target)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[model] = found
        return found

    def exact_names(self) -> list[str]:
        """Model names the config spells out (exact routes and aliases), for /v1/models."""
        names = list(self._exact)
        names.extend(a for a in self.aliases if a not in self._exact)
        return names

    def upstream_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for route in list(self._exact.values()) + [r for _, r in self._globs]:
            for name in [route.upstream] if route.upstream is not None else route.policy.upstream_names():  # type: ignore[union-attr]
                seen.setdefault(name, None)
        return list(seen)
