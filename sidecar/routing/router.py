"""Model name -> route -> Target. Pure and synchronous given a config snapshot.

Aliases apply first; then an exact route wins over any glob; then globs in the order written.
``Router.resolve`` is the one lookup: the name after aliases, the route and its (primary)
target, computed once per model name and cached. A policy route's other targets are
``sidecar.routing.policy``'s business.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core import Target
from ..errors import NoRoute

if TYPE_CHECKING:
    from ..config import Route

__all__ = ["Resolved", "Router", "is_glob"]

_CACHE_LIMIT = 4096


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a requested model name resolves to: ``name`` after aliases always; ``route`` and its
    primary ``target`` when a route serves it (else None, and ``require`` raises NoRoute)."""

    requested: str
    name: str
    route: Route | None
    target: Target | None

    def require(self) -> tuple[Route, Target]:
        if self.route is None or self.target is None:
            raise NoRoute(f"model: {self.requested} (no route serves this model)")
        return self.route, self.target


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
        self._cache: dict[str, Resolved] = {}

    def resolve(self, model: str) -> Resolved:
        """The name after aliases, the route and its primary target (looked up once, cached)."""
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
        target = None
        if route is not None:
            if route.upstream is not None:
                target = Target(upstream=route.upstream, model=route.model or name, route=route.match)
            else:
                assert route.policy is not None
                first = route.policy.groups[0].targets[0]
                target = Target(upstream=first.upstream, model=first.model or name, route=route.match)
        found = Resolved(model, name, route, target)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[model] = found
        return found

    def match(self, model: str) -> tuple[Route, str]:
        """The route for a requested model name and the name after aliases; NoRoute if none."""
        resolved = self.resolve(model)
        return resolved.require()[0], resolved.name

    def route(self, model: str) -> Target:
        """The target for a requested model name (a policy route's primary target)."""
        return self.resolve(model).require()[1]

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
