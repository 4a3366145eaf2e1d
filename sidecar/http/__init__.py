"""The HTTP door: the API listener's ASGI app (``app``), the admin listener's (``admin``), and
the health and readiness answers they share (``health``)."""
