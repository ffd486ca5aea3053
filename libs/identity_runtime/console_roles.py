"""The console role an RPC needs, from the contract.

A console user (an analyst's session through the gateway, actor
`console_user:<id>`) holds the internal scope; what they may call is further
held to the RPC's declared `console_role`
(`(identity.common.v1.access).console_role`, protos/identity/common/v1/options.proto):

- "analyst": any console user (roles `analyst` or `admin`);
- "admin": console admins only; also what an undeclared role means (the safe
  default: a new RPC is never silently open to analysts);
- "" : no console session reaches the RPC (anonymous or mesh-only).

API keys, OAuth clients, SDK sessions and mesh services are held to their
scope alone. The gateway checks the role on every route from the roles
kyc-tier answers for the session; kyc-tier checks it again for its own RPCs
from its own record of the user (services/kyc_tier/console_roles.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor

from identity_platform_api.common.v1 import options_pb2
from identity_runtime import descriptors
from identity_runtime.errors import PermissionDenied

ANALYST = "analyst"
ADMIN = "admin"
ACTOR_PREFIX = "console_user:"
ADMIN_REQUIRED = "ADMIN_REQUIRED"

_DECLARED = {
    options_pb2.CONSOLE_ROLE_ANALYST: ANALYST,
    options_pb2.CONSOLE_ROLE_ADMIN: ADMIN,
}


def reaches_console(method: MethodDescriptor) -> bool:
    """Whether a console session can call the RPC: a route of scope public or internal."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return False
    if not options.HasExtension(options_pb2.access):
        return True
    scope = options.Extensions[options_pb2.access].scope
    return scope not in (options_pb2.SCOPE_ANONYMOUS, options_pb2.SCOPE_MESH)


def declared_role(method: MethodDescriptor) -> str:
    """The role the contract states ("" when it states none)."""
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.access):
        return ""
    return _DECLARED.get(options.Extensions[options_pb2.access].console_role, "")


def required_role(method: MethodDescriptor) -> str:
    """ "analyst" or "admin" for an RPC a console session can reach (undeclared:
    "admin"); "" for one it cannot."""
    if not reaches_console(method):
        return ""
    return declared_role(method) or ADMIN


def role_policies(packages: Iterable[str] | None = None) -> dict[str, str]:
    """`/pkg.Service/Method` -> its required role, for the contract services of `packages`."""
    return {path: required_role(method) for path, method in descriptors.methods(packages)}


def console_user_id(actor: str) -> str:
    """The console user an actor names ("" for an API key or a service)."""
    return actor.removeprefix(ACTOR_PREFIX) if actor.startswith(ACTOR_PREFIX) else ""


def holds(roles: Iterable[str], required: str) -> bool:
    """Whether a console user with `roles` may call an RPC needing `required`."""
    held = set(roles)
    if required == ADMIN:
        return ADMIN in held
    if required == ANALYST:
        return bool(held & {ANALYST, ADMIN})
    return True


def check(roles: Iterable[str], required: str) -> None:
    """PERMISSION_DENIED / ADMIN_REQUIRED unless `roles` hold `required`."""
    if not holds(roles, required):
        raise PermissionDenied("only a console admin may do this", ADMIN_REQUIRED)
