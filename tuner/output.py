"""What the command line prints for a proto: its proto3 JSON, with the fields' own names."""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message


def to_json(message: Message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True)
