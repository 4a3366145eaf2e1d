"""The request pipeline both doors call, one per config snapshot.

A Messages or count_tokens call goes, in ``pipeline.Pipeline``: validate -> hop check ->
admission (``sidecar.admission``) -> route (``Router.resolve``) -> routing policy, if the route
has one (``sidecar.routing.policy.execute``) -> each attempt through the upstream's filters
(``filters``: drop the client key, pacing, telemetry) -> the adapter. A streamed answer of an
admitted call is charged as it passes (``charge``); ``models`` pages ``/v1/models``.
"""

from __future__ import annotations

from .models import page_models
from .pipeline import Pipeline

__all__ = ["Pipeline", "page_models"]
