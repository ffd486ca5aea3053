"""The contracts' comments, by full name, from the generated descriptor set.

Python-generated descriptors carry no source info, so `tools/contracts.py`
also writes `identity/descriptor_set.binpb` (our protos with
`--include_source_info`). Names:

    "identity.kyc_tier.v1.CustomerService"                 service
    "identity.kyc_tier.v1.CustomerService.GetCustomer"     method
    "identity.kyc_tier.v1.Customer"                        message or enum
    "identity.kyc_tier.v1.Customer.customer_id"            field or enum value
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence

from google.protobuf import descriptor_pb2

DESCRIPTOR_SET = "descriptor_set.binpb"

# Field numbers in descriptor.proto that address declarations in source info.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def _clean(text: str) -> str:
    lines = [line.strip() for line in text.strip("\n").splitlines()]
    paragraphs, current = [], []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def _file_comments(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    by_path = {
        tuple(location.path): _clean(location.leading_comments)
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }
    names: dict[str, str] = {}

    def note(path: Sequence[int], name: str) -> None:
        text = by_path.get(tuple(path))
        if text:
            names[name] = text

    def enum(path: list[int], value: descriptor_pb2.EnumDescriptorProto, prefix: str) -> None:
        full = f"{prefix}.{value.name}"
        note(path, full)
        for index, item in enumerate(value.value):
            note([*path, _ENUM_VALUE, index], f"{full}.{item.name}")

    def message(path: list[int], value: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        full = f"{prefix}.{value.name}"
        note(path, full)
        for index, field in enumerate(value.field):
            note([*path, _MESSAGE_FIELD, index], f"{full}.{field.name}")
        for index, nested in enumerate(value.nested_type):
            message([*path, _MESSAGE_NESTED, index], nested, full)
        for index, nested_enum in enumerate(value.enum_type):
            enum([*path, _MESSAGE_ENUM, index], nested_enum, full)

    package = file.package
    for index, value in enumerate(file.message_type):
        message([_FILE_MESSAGE, index], value, package)
    for index, enum_value in enumerate(file.enum_type):
        enum([_FILE_ENUM, index], enum_value, package)
    for index, service in enumerate(file.service):
        full = f"{package}.{service.name}"
        note([_FILE_SERVICE, index], full)
        for method_index, method in enumerate(service.method):
            note([_FILE_SERVICE, index, _SERVICE_METHOD, method_index], f"{full}.{method.name}")
    return names


@functools.cache
def contract_comments() -> dict[str, str]:
    """Every documented declaration of the contracts; empty if the set is missing."""
    resource = importlib.resources.files("identity_platform_api").joinpath(DESCRIPTOR_SET)
    if not resource.is_file():
        return {}
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(resource.read_bytes())
    comments: dict[str, str] = {}
    for file in descriptor_set.file:
        comments.update(_file_comments(file))
    return comments
