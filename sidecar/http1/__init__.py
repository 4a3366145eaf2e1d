"""HTTP/1.1 on httptools, owned by the sidecar: the API listener's server and the upstream
connection pool, with the limits, timeouts and cancellation a sidecar in every pod must control.
Below the doors and the adapters; imports nothing of the sidecar but its errors and core."""
