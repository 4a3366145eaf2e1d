"""``/v1/models`` paging, the API's shape over the list a pipeline gathers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidRequest

__all__ = ["page_models"]


_LIFECYCLES = ("active", "deprecated", "retired")
_DEFAULT_LIFECYCLES = ("active", "deprecated")


def page_models(
    models: list[dict[str, Any]],
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
    lifecycle: Sequence[str] = (),
) -> dict[str, Any]:
    """One page of a model list in the API's shape (``data, has_more, first_id, last_id``).

    ``lifecycle`` (the ``lifecycle[]`` query, spec section 7) keeps the models in those stages;
    none given: active and deprecated ones. A model that does not say is active."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
    for stage in lifecycle:
        if stage not in _LIFECYCLES:
            raise InvalidRequest(
                f"lifecycle: Input should be 'active', 'deprecated' or 'retired', not {stage!r}"
            )
    stages = frozenset(lifecycle or _DEFAULT_LIFECYCLES)
    models = [m for m in models if m.get("lifecycle", "active") in stages]
    ids = [m.get("id") for m in models]
    if after_id is not None:
        if after_id not in ids:
            raise InvalidRequest(f"after_id: unknown model id {after_id!r}")
        start = ids.index(after_id) + 1
        chunk = models[start : start + limit]
        has_more = start + limit < len(models)
    elif before_id is not None:
        if before_id not in ids:
            raise InvalidRequest(f"before_id: unknown model id {before_id!r}")
        end = ids.index(before_id)
        chunk = models[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        chunk = models[:limit]
        has_more = limit < len(models)
    return {
        "data": chunk,
        "has_more": has_more,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }
