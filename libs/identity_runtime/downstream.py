"""The clients a service calls the rest of the mesh with, built from its settings.

Every service that calls others (kyc-tier, face-match) builds them the same
way: one channel per service it declares in `mesh.<SERVICE>.calls`, at the
`<package>_address` setting; its own message limit and default deadline;
mutual TLS from its `MESH_TLS_*` files; and a caller token signed with its
`MESH_SIGNING_KEY`.
"""

from __future__ import annotations

from identity_runtime import mesh, meshauth, meshtls
from identity_runtime.clients import ClientFactory, ClientOptions
from identity_runtime.settings import ServiceSettings, addresses


def downstream_addresses(settings: ServiceSettings, service: mesh.MeshService) -> dict[str, str]:
    """Proto package -> host:port of each service `service` calls."""
    return addresses(settings, (mesh.BY_NAME[name] for name in service.calls))


def service_clients(settings: ServiceSettings, service: mesh.MeshService) -> ClientFactory:
    """The ClientFactory `service` calls the services it declares with."""
    return ClientFactory(
        downstream_addresses(settings, service),
        ClientOptions(
            max_message_bytes=settings.max_message_bytes,
            default_timeout_seconds=settings.default_deadline_seconds,
            tls=meshtls.mesh_tls_from(settings, service.env_prefix),
        ),
        signer=meshauth.service_signer(service.name, settings, service.env_prefix),
    )
