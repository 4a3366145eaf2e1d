"""Admission: client keys and per-key rate and concurrency limits, and upstream pacing.

Its typed config is ``sidecar.config.admission`` (``AdmissionConfig``: keys, tiers, queue, backend).
- ``keys``: the key store (hashes only), credential extraction, ``python -m sidecar.admission.keys hash``.
- ``limiter``: GCRA rate limits and concurrency leases, in process or shared through Redis.
- ``headers``: the ``anthropic-ratelimit-*`` response headers, ``retry-after``, ``upstream-`` renaming.
- ``gate``: ``Admission.admit(headers, model, estimated_input_tokens) -> Ticket``, what the pipeline calls.
- ``pacing``: budgets per upstream key learnt from ratelimit headers (``sidecar.pipeline.filters.Paced``).

Nothing is imported here, so ``python -m sidecar.admission.keys`` runs without a warning.
"""
