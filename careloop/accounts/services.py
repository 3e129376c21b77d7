"""Log-in with lockout and staff account changes (F7.5). Every outcome is audited (F7.6)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from careloop.accounts.models import User
from careloop.audit import services as audit
from careloop.audit.models import AuditAction

logger = logging.getLogger(__name__)


class LoginError(StrEnum):
    INVALID = "invalid"  # wrong user name or password, or an inactive account
    LOCKED = "locked"  # too many failures; ``LoginAttempt.locked_until`` says until when


@dataclass(frozen=True)
class LoginAttempt:
    """The result of :func:`attempt_login`: either ``user`` or ``error``."""

    user: User | None = None
    error: LoginError | None = None
    locked_until: dt.datetime | None = None


def attempt_login(
    request: HttpRequest,
    *,
    username: str,
    password: str,
    now: dt.datetime | None = None,
) -> LoginAttempt:
    """Check a user name and password, counting failures and locking the account.

    After ``settings.LOGIN_MAX_FAILURES`` consecutive failures the account is locked for
    ``settings.LOGIN_LOCKOUT_SECONDS``; while locked even the right password is refused. A success
    resets the counter. The caller logs the returned user in (that touches the session).
    The password never reaches the audit log; an unknown user name is not recorded either, because
    people sometimes type their password into the user-name box.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the row so two parallel guesses cannot both pass under the limit.
        account = User.objects.select_for_update().filter(username=username).first()
        if account is None:
            authenticate(request, username=username, password=password)  # same cost as a real check
            audit.record(
                AuditAction.LOGIN_FAILED,
                user=None,
                detail={"reason": "unknown_user"},
                request=request,
            )
            return LoginAttempt(error=LoginError.INVALID)

        if account.locked_until is not None and account.locked_until > now:
            audit.record(
                AuditAction.LOGIN_FAILED, user=account, detail={"reason": "locked"}, request=request
            )
            return LoginAttempt(error=LoginError.LOCKED, locked_until=account.locked_until)

        user = authenticate(request, username=username, password=password)
        if user is not None:
            if account.failed_logins or account.locked_until:
                account.failed_logins = 0
                account.locked_until = None
                account.save(update_fields=["failed_logins", "locked_until"])
            audit.record(AuditAction.LOGIN, user=account, request=request)
            return LoginAttempt(user=user)  # type: ignore[arg-type]

        account.failed_logins += 1
        if account.failed_logins >= settings.LOGIN_MAX_FAILURES:
            account.locked_until = now + dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
            failures = account.failed_logins
            account.failed_logins = 0  # a fresh allowance once the lock expires
            account.save(update_fields=["failed_logins", "locked_until"])
            audit.record(
                AuditAction.LOCKED_OUT,
                user=account,
                detail={"failures": failures, "seconds": settings.LOGIN_LOCKOUT_SECONDS},
                request=request,
            )
            return LoginAttempt(error=LoginError.LOCKED, locked_until=account.locked_until)
        account.save(update_fields=["failed_logins"])
        audit.record(
            AuditAction.LOGIN_FAILED,
            user=account,
            detail={"reason": "bad_password", "failures": account.failed_logins},
            request=request,
        )
        return LoginAttempt(error=LoginError.INVALID)


def unlock(account: User, *, acting_user: User) -> User:
    """Lift a lockout before it expires (an administrator's action)."""
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=account.pk)
        account.failed_logins = 0
        account.locked_until = None
        account.save(update_fields=["failed_logins", "locked_until"])
    logger.info("account %s unlocked by user %s", account.pk, acting_user.pk)
    return account


def is_locked(account: User, *, now: dt.datetime | None = None) -> bool:
    return account.locked_until is not None and account.locked_until > (now or timezone.now())
