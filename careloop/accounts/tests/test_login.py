"""Log-in, lockout and log-out (F7.5), with their audit events (F7.6)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from careloop.accounts.models import User
from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import PASSWORD

LOGIN = "/accounts/login/"


@pytest.fixture
def three_strikes(settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_LOCKOUT_SECONDS = 600


def _fail(client, username="alice", times=1):
    for _ in range(times):
        response = client.post(LOGIN, {"username": username, "password": "wrong-password"})
    return response


def test_right_password_logs_in_and_is_audited(client, hospital):
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == "/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.LOGIN)
    assert event.user == hospital.alice
    assert event.username == "alice"
    assert event.ip == "127.0.0.1"


def test_wrong_password_is_refused_counted_and_audited_without_the_password(client, hospital):
    response = _fail(client)

    assert response.status_code == 200
    assert "Wrong user name or password." in response.content.decode()
    hospital.alice.refresh_from_db()
    assert hospital.alice.failed_logins == 1
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.user == hospital.alice
    assert event.detail == {"reason": "bad_password", "failures": 1}
    assert "wrong-password" not in str(AuditEvent.objects.values_list())


def test_unknown_user_name_is_audited_without_recording_the_name(client, hospital):
    client.post(LOGIN, {"username": "Test@2026pass", "password": "x"})

    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.user is None
    assert event.username == ""
    assert event.detail == {"reason": "unknown_user"}


def test_account_locks_after_max_failures_even_for_the_right_password(
    client, hospital, three_strikes
):
    response = _fail(client, times=3)

    page = response.content.decode()
    assert "this account is locked until" in page
    assert "10 more minutes" in page
    alice = User.objects.get(username="alice")
    assert alice.locked_until is not None
    assert alice.locked_until > timezone.now() + dt.timedelta(seconds=590)
    locked = AuditEvent.objects.get(action=AuditAction.LOCKED_OUT)
    assert locked.detail == {"failures": 3, "seconds": 600}

    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "this account is locked until" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN).count() == 0
    assert AuditEvent.objects.filter(
        action=AuditAction.LOGIN_FAILED, detail__reason="locked"
    ).exists()
    assert client.get("/").status_code == 302


def test_lockout_message_shows_the_local_time(client, hospital, three_strikes):
    response = _fail(client, times=3)

    alice = User.objects.get(username="alice")
    local = timezone.localtime(alice.locked_until)
    assert local.utcoffset() == dt.timedelta(hours=8)  # Asia/Shanghai
    assert local.strftime("%H:%M") in response.content.decode()


def test_lock_expires_after_the_lockout_time(client, hospital, three_strikes):
    _fail(client, times=3)
    User.objects.filter(username="alice").update(
        locked_until=timezone.now() - dt.timedelta(seconds=1)
    )

    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    alice = User.objects.get(username="alice")
    assert alice.locked_until is None
    assert alice.failed_logins == 0


def test_success_resets_the_failure_count(client, hospital, three_strikes):
    _fail(client, times=2)
    client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    client.post("/accounts/logout/")
    _fail(client, times=2)

    alice = User.objects.get(username="alice")
    assert alice.failed_logins == 2
    assert alice.locked_until is None


def test_failures_of_one_account_do_not_lock_another(client, hospital, three_strikes):
    _fail(client, username="alice", times=3)

    assert client.post(LOGIN, {"username": "bob", "password": PASSWORD}).status_code == 302


def test_inactive_account_cannot_log_in(client, hospital):
    User.objects.filter(username="alice").update(is_active=False)

    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    assert "Wrong user name or password." in response.content.decode()


def test_empty_form_reports_the_missing_fields(client, hospital):
    response = client.post(LOGIN, {"username": "", "password": ""})

    assert response.status_code == 200
    assert response.content.decode().count("This field is required.") == 2
    assert not AuditEvent.objects.exists()


def test_login_follows_a_local_next_but_not_another_site(client, hospital):
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD, "next": "/patients/"})
    assert response.url == "/patients/"
    client.post("/accounts/logout/")

    response = client.post(
        LOGIN, {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.url == "/"


def test_login_page_is_public_and_carries_next(client, hospital):
    response = client.get("/patients/")
    assert response.status_code == 302

    page = client.get(response.url)
    assert page.status_code == 200
    assert 'name="next" value="/patients/"' in page.content.decode()


def test_logout_ends_the_session(client, hospital):
    client.force_login(hospital.alice)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response.url == "/accounts/login/"
    assert client.get("/").status_code == 302
