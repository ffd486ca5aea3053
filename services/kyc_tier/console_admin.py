"""Console users managed by their organisation's admins (the probe's F7):
list them, disable one (ending every session of theirs at once) and replace
a user's roles, each change audited (`console_user.disable`,
`console_user.roles`). Admins only, or an internal-scope key, as each RPC
declares (console_roles.py); the CLI (`identity console-users disable` /
`set-roles`) runs the same functions.

An organisation keeps an active admin: disabling or demoting its last one is
FAILED_PRECONDITION / LAST_ADMIN. The organisation's users are locked
(SELECT ... FOR UPDATE) for the check, so two admins demoting each other at
once cannot both succeed. Another organisation's user is answered as an
unknown one (NOT_FOUND / CONSOLE_USER_NOT_FOUND)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition, NotFound, invalid_field
from services.kyc_tier import outbox, sdk_sessions
from services.kyc_tier.console_models import ConsoleSession
from services.kyc_tier.console_models import ConsoleUser as UserRow
from services.kyc_tier.console_users import ROLES, ConsoleUserView, user_view
from services.kyc_tier.store import Store

ADMIN = "admin"


def _locked_users(session: Session, org_id: str) -> list[UserRow]:
    return list(
        session.scalars(
            select(UserRow)
            .where(UserRow.org_id == org_id)
            .order_by(UserRow.user_id)
            .with_for_update()
        )
    )


def _target(users: list[UserRow], user_id: str) -> UserRow:
    for row in users:
        if row.user_id == user_id:
            return row
    raise NotFound("no console user of this organisation has this id", "CONSOLE_USER_NOT_FOUND")


def _keep_an_admin(users: list[UserRow], target: UserRow, stays_admin: bool) -> None:
    """LAST_ADMIN when `target` is the organisation's only active admin and
    would stop being one."""
    if stays_admin or target.disabled_at is not None or ADMIN not in target.roles:
        return
    others = [u for u in users if u is not target and u.disabled_at is None and ADMIN in u.roles]
    if not others:
        raise FailedPrecondition(
            "the organisation would have no active console admin: make another user admin first",
            "LAST_ADMIN",
        )


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    checked = tuple(sorted(set(roles)))
    if not checked:
        raise invalid_field("roles", "give at least one role")
    if any(role not in ROLES for role in checked):
        raise invalid_field("roles", f"allowed roles: {', '.join(ROLES)}")
    return checked


def list_users(session: Session, org_id: str) -> list[ConsoleUserView]:
    rows = session.scalars(
        select(UserRow).where(UserRow.org_id == org_id).order_by(UserRow.email)
    ).all()
    return [user_view(session, row) for row in rows]


def disable_user(
    session: Session, org_id: str, user_id: str, now: datetime
) -> tuple[ConsoleUserView, int]:
    """Disable the user and end their open sessions (audited); (the user, sessions ended)."""
    users = _locked_users(session, org_id)
    target = _target(users, user_id)
    if target.disabled_at is not None:
        return user_view(session, target), 0
    _keep_an_admin(users, target, stays_admin=False)
    target.disabled_at = now
    ended = session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.user_id == user_id,
            ConsoleSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    revoked = int(getattr(ended, "rowcount", 0) or 0)
    # The capture-SDK sessions they minted as an admin end with them too.
    sdk_ended = sdk_sessions.end_minted_by(session, org_id, f"console_user:{user_id}", now)
    outbox.record(
        session,
        org_id,
        "console_user.disable",
        f"console_user:{user_id}",
        "success",
        details={"sessions_revoked": str(revoked), "sdk_sessions_revoked": str(sdk_ended)},
    )
    return user_view(session, target), revoked


def set_user_roles(
    session: Session, org_id: str, user_id: str, roles: tuple[str, ...]
) -> ConsoleUserView:
    """Replace the user's roles (audited, with the old and the new ones)."""
    checked = check_roles(roles)
    users = _locked_users(session, org_id)
    target = _target(users, user_id)
    _keep_an_admin(users, target, stays_admin=ADMIN in checked)
    before = ",".join(sorted(target.roles))
    target.roles = list(checked)
    outbox.record(
        session,
        org_id,
        "console_user.roles",
        f"console_user:{user_id}",
        "success",
        details={"roles": ",".join(checked), "previous_roles": before},
    )
    return user_view(session, target)


class ConsoleAdmin:
    """The API's side of the functions above."""

    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store = store
        self.clock = clock

    async def list_users(self, org_id: str) -> list[ConsoleUserView]:
        return await self.store.read(lambda s: list_users(s, org_id))

    async def disable(self, org_id: str, user_id: str) -> tuple[ConsoleUserView, int]:
        now = self.clock()
        return await self.store.write(lambda s: disable_user(s, org_id, user_id, now))

    async def set_roles(self, org_id: str, user_id: str, roles: tuple[str, ...]) -> ConsoleUserView:
        return await self.store.write(lambda s: set_user_roles(s, org_id, user_id, roles))
