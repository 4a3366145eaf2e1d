"""The gRPC door: ``servicer`` (service ``sidecar.messages.v1.Messages`` over the pipeline),
``listener`` (grpc.aio with health and reflection), ``convert`` and ``codec`` (protobuf <->
Anthropic JSON, driven by the proto's descriptors), ``codegen`` (the committed generated code)."""
