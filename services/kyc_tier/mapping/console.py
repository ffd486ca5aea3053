"""The analyst console's users and sessions as the contract spells them."""

from __future__ import annotations

from identity_platform_api.kyc_tier.v1 import console_auth_pb2
from identity_runtime.convert import message
from services.kyc_tier.console import OpenedSession, SessionCaller
from services.kyc_tier.console_users import ConsoleUserView


def console_user(user: ConsoleUserView) -> console_auth_pb2.ConsoleUser:
    return message(console_auth_pb2.ConsoleUser, user, roles=list(user.roles))


def opened_session(opened: OpenedSession) -> console_auth_pb2.Session:
    return message(console_auth_pb2.Session, opened, user=console_user(opened.user))


def session_caller(caller: SessionCaller) -> console_auth_pb2.AuthenticateSessionResponse:
    return message(console_auth_pb2.AuthenticateSessionResponse, caller, roles=list(caller.roles))
