"""sidecar.messages.v1: code generated from proto/sidecar/messages/v1/*.proto by `make proto`.

Do not edit the *_pb2*.py[i] files; edit the .proto files and regenerate.
"""
