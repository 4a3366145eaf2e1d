from __future__ import annotations

import pytest

from sidecar.config import Route
from sidecar.errors import NoRoute
from sidecar.routing import Router

# The kind of map the Grok2API docs show: Claude names mapped onto another provider's models.
ROUTES = [
    Route(match="claude-*", upstream="anthropic"),
    Route(match="claude-3-5-sonnet-20241022", upstream="xai", model="grok-3"),
    Route(match="grok-*", upstream="xai"),
    Route(match="gpt-?o", upstream="openai"),
]


def test_exact_beats_glob_and_renames() -> None:
    router = Router(ROUTES)
    target = router.route("claude-3-5-sonnet-20241022")
    assert (target.upstream, target.model, target.route) == ("xai", "grok-3", "claude-3-5-sonnet-20241022")
    assert router.route("claude-opus-4-8").upstream == "anthropic"
    assert router.route("claude-opus-4-8").model == "claude-opus-4-8"
    assert router.route("gpt-4o").upstream == "openai"


def test_globs_in_order_and_no_route() -> None:
    router = Router([Route(match="*", upstream="b"), Route(match="grok-*", upstream="a")])
    assert router.route("grok-4").upstream == "b"
    with pytest.raises(NoRoute, match="model: llama"):
        Router(ROUTES).route("llama")


def test_aliases_apply_before_routes() -> None:
    router = Router(ROUTES, {"sonnet": "claude-3-5-sonnet-20241022", "fast": "grok-4"})
    assert router.route("sonnet").model == "grok-3"
    assert router.route("fast").model == "grok-4"
    assert router.exact_names() == ["claude-3-5-sonnet-20241022", "sonnet", "fast"]
    assert router.upstream_names() == ["xai", "anthropic", "openai"]


def test_cache_returns_same_answer() -> None:
    router = Router(ROUTES)
    assert router.route("grok-4") is router.route("grok-4")


def test_match_and_route_share_one_cached_lookup() -> None:
    router = Router(ROUTES, {"sonnet": "claude-3-5-sonnet-20241022"})
    route, name = router.match("grok-4")
    # Once looked up, a model name is not matched against the globs again (the hot path
    # calls match and route for every request).
    router._globs = []
    assert router.match("grok-4") == (route, name)
    assert router.route("grok-4").upstream == "xai"
    assert router.match("sonnet")[1] == "claude-3-5-sonnet-20241022"
