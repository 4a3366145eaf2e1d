"""Generated protobuf/gRPC code for the sidecar's gRPC door (see proto/ and sidecar.grpc.codegen)."""
