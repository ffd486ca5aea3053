"""Each service's ServiceSpec is derived from the mesh table (mesh.py) and the
contracts, not restated: name, environment prefix and gRPC service names."""

from __future__ import annotations

import importlib

import pytest

from identity_runtime import descriptors, mesh
from identity_runtime.server import ServiceSpec
from identity_runtime.settings import ServiceSettings
from services.matching.servicer import MatchingServiceServicer


def contract_services(package: str) -> set[str]:
    """The services the contracts declare in proto package identity.<package>.v1."""
    return {
        service.full_name
        for file in descriptors.load_all_contracts()
        if file.package == f"identity.{package}.v1"
        for service in file.services_by_name.values()
    }


@pytest.mark.parametrize("service", mesh.SERVICES, ids=lambda s: s.name)
def test_each_spec_is_the_mesh_entry(service: mesh.MeshService) -> None:
    spec = importlib.import_module(f"{service.module}.service").SPEC
    assert (spec.name, spec.env_prefix) == (service.name, service.env_prefix)
    assert set(spec.service_names) == contract_services(service.package) != set()


def test_a_mesh_entry_without_contract_services_is_refused() -> None:
    async def build(settings: ServiceSettings) -> object:
        raise AssertionError("never built")

    unknown = mesh.MeshService("nothing", "nothing_here", "NOTHING", 1)
    with pytest.raises(ValueError, match="no gRPC service in the contracts of package"):
        ServiceSpec.from_mesh(unknown, settings_class=ServiceSettings, build=build, servicers=[])


@pytest.mark.parametrize("service", mesh.SERVICES, ids=lambda s: s.name)
def test_every_contract_service_is_registered(service: mesh.MeshService) -> None:
    """Each service of the package gets its servicer, or its generated base
    (UNIMPLEMENTED) when the service has none yet."""
    spec = importlib.import_module(f"{service.module}.service").SPEC
    registered = spec.servicers(object(), None)
    implemented = sorted(full_name_of(servicer) for _, servicer in registered)
    assert implemented == sorted(spec.service_names)
    own = {type(s).__module__ for _, s in registered if not type(s).__module__.endswith("_grpc")}
    # The service's own servicer modules (kyc-tier has a second, console_servicer).
    assert f"{service.module}.servicer" in own
    assert all(m.startswith(f"{service.module}.") and m.endswith("servicer") for m in own)


def full_name_of(servicer: object) -> str:
    """The contract service a servicer instance implements (its generated base)."""
    for base in type(servicer).__mro__:
        if base.__module__.endswith("_pb2_grpc"):
            return next(
                s.full_name
                for s in descriptors.services()
                if f"{s.name}Servicer" == base.__name__
                and base.__module__.startswith(s.file.name.removesuffix(".proto").replace("/", "."))
            )
    raise AssertionError(f"{type(servicer).__name__} has no generated base")


def test_a_servicer_of_another_package_is_refused() -> None:
    async def build(settings: ServiceSettings) -> object:
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="implements no gRPC service of package 'audit'"):
        ServiceSpec.from_mesh(
            mesh.AUDIT,
            settings_class=ServiceSettings,
            build=build,
            servicers=[MatchingServiceServicer],
        )
