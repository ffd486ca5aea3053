"""Access to the generated contracts' descriptors (one import point)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

import identity_platform_api

# add_XServicer_to_server(servicer, server)
AddServicer = Callable[[Any, Any], None]


@functools.cache
def load_all_contracts() -> tuple[FileDescriptor, ...]:
    """Import every generated `*_pb2` module; return their file descriptors."""
    files = []
    for module in pkgutil.walk_packages(
        identity_platform_api.__path__, prefix="identity_platform_api."
    ):
        if module.name.endswith("_pb2"):
            files.append(importlib.import_module(module.name).DESCRIPTOR)
    return tuple(sorted(files, key=lambda f: f.name))


def pool() -> descriptor_pool.DescriptorPool:
    load_all_contracts()
    return descriptor_pool.Default()


def services() -> list[ServiceDescriptor]:
    found = []
    for file in load_all_contracts():
        found.extend(file.services_by_name.values())
    return found


def methods(packages: Iterable[str] | None = None) -> Iterator[tuple[str, MethodDescriptor]]:
    """(`/pkg.Service/Method`, its descriptor) for every RPC of the contract
    services of `packages` (`matching`, `kyc_tier`, ...; None: every package)."""
    wanted = set(packages) if packages is not None else None
    for service in services():
        if wanted is not None and service_package(service.full_name) not in wanted:
            continue
        for method in service.methods:
            yield f"/{service.full_name}/{method.name}", method


def generated_servicer(service: ServiceDescriptor) -> tuple[type[Any], AddServicer]:
    """The generated base servicer of `service` (its RPCs answer UNIMPLEMENTED)
    and the function registering an instance on a server; protoc names the
    module after the .proto file."""
    module = service.file.name.removesuffix(".proto").replace("/", ".")
    grpc_module = importlib.import_module(f"{module}_pb2_grpc")
    return (
        getattr(grpc_module, f"{service.name}Servicer"),
        getattr(grpc_module, f"add_{service.name}Servicer_to_server"),
    )


def service_package(service_full_name: str) -> str:
    """`identity.matching.v1.MatchingService` -> `matching`."""
    parts = service_full_name.split(".")
    return parts[1] if len(parts) >= 4 and parts[0] == "identity" else ""


def idempotency_level(method: MethodDescriptor) -> str:
    options = descriptor_pb2.MethodOptions()
    options.ParseFromString(method.GetOptions().SerializeToString())
    return descriptor_pb2.MethodOptions.IdempotencyLevel.Name(options.idempotency_level)


def is_retry_safe(method: MethodDescriptor) -> bool:
    """Only methods the contract marks side-effect free or idempotent are retried."""
    return idempotency_level(method) in ("NO_SIDE_EFFECTS", "IDEMPOTENT")
