from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import PASSWORD

from .factories import api_client

URL = "/api/v1/auth/token/"


def test_right_password_returns_a_token_that_authenticates(hospital):
    response = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/patients/").status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, user=hospital.alice).exists()


def test_the_same_token_comes_back_on_the_next_login(hospital):
    first = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    second = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert first.json()["token"] == second.json()["token"]


def test_wrong_password_is_refused_and_counted(hospital):
    response = APIClient().post(URL, {"username": "alice", "password": "wrong"}, format="json")

    assert response.status_code == 400
    assert "token" not in response.json()
    assert response.json()["non_field_errors"]
    hospital.alice.refresh_from_db()
    assert hospital.alice.failed_logins == 1


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(hospital):
    unknown = APIClient().post(URL, {"username": "nobody", "password": "x"}, format="json")
    wrong = APIClient().post(URL, {"username": "alice", "password": "x"}, format="json")

    assert unknown.status_code == wrong.status_code == 400
    assert unknown.json() == wrong.json()


def test_missing_fields_are_reported_per_field(db):
    response = APIClient().post(URL, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_inactive_user_gets_no_token(hospital):
    hospital.alice.is_active = False
    hospital.alice.save(update_fields=["is_active"])

    response = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert response.status_code == 400


def test_too_many_failures_lock_the_account_even_for_the_right_password(hospital, settings):
    settings.LOGIN_MAX_FAILURES = 3
    client = APIClient()
    for _ in range(2):
        assert client.post(URL, {"username": "bob", "password": "x"}).status_code == 400

    third = client.post(URL, {"username": "bob", "password": "x"})
    right = client.post(URL, {"username": "bob", "password": PASSWORD})

    assert third.status_code == 403
    assert right.status_code == 403
    assert right.json()["code"] == "locked"
    assert "token" not in right.json()
    hospital.bob.refresh_from_db()
    assert hospital.bob.locked_until is not None
    assert AuditEvent.objects.filter(action=AuditAction.LOCKED_OUT, user=hospital.bob).exists()


def test_expired_lock_lets_the_right_password_in(hospital, settings):
    settings.LOGIN_MAX_FAILURES = 1
    settings.LOGIN_LOCKOUT_SECONDS = 0
    client = APIClient()
    client.post(URL, {"username": "bob", "password": "x"})

    response = client.post(URL, {"username": "bob", "password": PASSWORD})

    assert response.status_code == 200
    hospital.bob.refresh_from_db()
    assert hospital.bob.failed_logins == 0


@pytest.mark.parametrize("header", ["Token nonsense", "Token", "Bearer abc"])
def test_bad_token_is_401(hospital, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert client.get("/api/v1/patients/").status_code == 401


def test_token_of_a_deactivated_user_stops_working(hospital):
    client = api_client(hospital.alice)
    hospital.alice.is_active = False
    hospital.alice.save(update_fields=["is_active"])

    assert client.get("/api/v1/patients/").status_code == 401


def test_session_login_works_for_the_browser(client, hospital):
    client.force_login(hospital.alice)

    assert client.get("/api/v1/patients/").status_code == 200


def _login() -> dict:
    return APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json").json()


def test_tokens_expire_and_a_new_login_issues_a_fresh_one(hospital, settings):
    import datetime as dt

    from rest_framework.authtoken.models import Token

    settings.API_TOKEN_TTL_HOURS = 12
    body = _login()
    assert body["expires_at"]
    Token.objects.filter(key=body["token"]).update(
        created=Token.objects.get(key=body["token"]).created - dt.timedelta(hours=13)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    refused = client.get("/api/v1/patients/")
    assert refused.status_code == 401
    assert "/api/v1/auth/token/" in refused.json()["detail"]  # "the token has expired; ask …"
    fresh = _login()["token"]
    assert fresh != body["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {fresh}")
    assert client.get("/api/v1/patients/").status_code == 200


def test_a_token_can_be_revoked(hospital):
    token = _login()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete(URL).status_code == 204
    assert client.get("/api/v1/patients/").status_code == 401
    assert APIClient().delete(URL).status_code == 401
