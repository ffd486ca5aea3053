"""Console roles, enforced for every kyc-tier RPC in one place.

`ConsoleRoleInterceptor` is kyc-tier's own stage of the server chain
(identity_runtime.server, `ServiceSpec.stages`), inside the shared ones: the
caller is verified and the call context bound. For a console user's call
(actor `console_user:<id>`, which the gateway signs for a session) it reads
the user from kyc-tier's own database, never trusting roles the gateway
could assert, and holds the call to the RPC's declared console role
(`(identity.common.v1.access).console_role`; undeclared: admin;
identity_runtime.console_roles):

- the user must exist in the call's organisation and not be disabled
  (UNAUTHENTICATED / SESSION_INVALID otherwise);
- an admin-only RPC needs the `admin` role (PERMISSION_DENIED /
  ADMIN_REQUIRED, naming nothing personal); the refusal is audited
  (`console.access` denied, details: the RPC and the role it needs).

API keys (an internal-scope key keeps its access), SDK sessions and mesh
services pass: their scope was checked by identity_runtime.authz.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import grpc
from sqlalchemy.orm import Session

from identity_runtime import console_roles
from identity_runtime import context as call_context
from identity_runtime.errors import PermissionDenied, Unauthenticated
from identity_runtime.interceptors import ScopedInterceptor
from identity_runtime.logs import get_logger
from services.kyc_tier import outbox
from services.kyc_tier.console_models import ConsoleUser as UserRow
from services.kyc_tier.store import Store

log = get_logger("identity.kyc_tier.console_roles")

PACKAGE = "kyc_tier"


def user_roles(session: Session, org_id: str, user_id: str) -> tuple[str, ...]:
    """The roles of an active console user of `org_id` (SESSION_INVALID otherwise)."""
    row = session.get(UserRow, user_id)
    if row is None or row.org_id != org_id or row.disabled_at is not None:
        raise Unauthenticated("the session's user is gone", "SESSION_INVALID")
    return tuple(row.roles)


class ConsoleRoleInterceptor(ScopedInterceptor):
    skips_infrastructure = True

    def __init__(self, store: Callable[[], Store]):
        # The store is looked up per call: the core is built after the server starts.
        self.store = store
        self.policies = console_roles.role_policies([PACKAGE])

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        await self.admit(method)
        yield

    async def admit(self, method: str) -> None:
        """Raise unless the call's console user (if any) may call `method`."""
        user_id = console_roles.console_user_id(call_context.actor())
        if not user_id:
            return
        # An RPC this table does not know is held to the strictest role.
        required = self.policies.get(method, console_roles.ADMIN)
        if not required:
            return
        org_id = call_context.require_org()
        store = self.store()
        roles = await store.read(lambda s: user_roles(s, org_id, user_id))
        if console_roles.holds(roles, required):
            return
        rpc = method.lstrip("/")
        log.warning("console role refused", rpc=rpc, required_role=required)
        await store.write(
            lambda s: outbox.record(
                s,
                org_id,
                "console.access",
                f"console_user:{user_id}",
                "denied",
                details={"rpc": rpc, "required_role": required},
            )
        )
        raise PermissionDenied("only a console admin may do this", console_roles.ADMIN_REQUIRED)
