"""Our HTTP/2 server (prior knowledge, cleartext): what the gRPC door runs on (``sidecar.grpc.native``)."""
