"""``/v1/models`` paging, the API's shape over the list a pipeline gathers."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest

__all__ = ["page_models"]


def page_models(
    models: list[dict[str, Any]], limit: int = 20, after_id: str | None = None, before_id: str | None = None
) -> dict[str, Any]:
    """One page of a model list in the API's shape (``data, has_more, first_id, last_id``)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
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
