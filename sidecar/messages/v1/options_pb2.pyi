from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
JSON_TEXT_FIELD_NUMBER: _ClassVar[int]
json_text: _descriptor.FieldDescriptor
TAG_FIELD_NUMBER: _ClassVar[int]
tag: _descriptor.FieldDescriptor
TAG_PREFIX_FIELD_NUMBER: _ClassVar[int]
tag_prefix: _descriptor.FieldDescriptor
UNTAGGED_FIELD_NUMBER: _ClassVar[int]
untagged: _descriptor.FieldDescriptor
ARRAY_FIELD_NUMBER: _ClassVar[int]
array: _descriptor.FieldDescriptor
