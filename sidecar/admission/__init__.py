"""Admission: client keys and per-key rate and concurrency limits (issue 8).

- ``config``: ``AdmissionConfig`` (keys, tiers, queue, backend) and ``build_admission_config``.
- ``keys``: the key store (hashes only), credential extraction, ``python -m sidecar.admission.keys hash``.
- ``limiter``: GCRA rate limits and concurrency leases, in process or shared through Redis.
- ``headers``: the ``anthropic-ratelimit-*`` response headers, ``retry-after``, ``upstream-`` renaming.
- ``gate``: ``Admission.admit(headers, model, estimated_input_tokens) -> Ticket``, what the core calls.

Nothing is imported here, so ``python -m sidecar.admission.keys`` runs without a warning.
"""
