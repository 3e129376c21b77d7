"""The staff list and unlocking accounts (F7.5)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from careloop.accounts.models import User
from careloop.core.testing import PASSWORD


def _lock(user):
    User.objects.filter(pk=user.pk).update(
        locked_until=timezone.now() + dt.timedelta(minutes=10), failed_logins=0
    )


def test_supervisor_sees_staff_of_their_departments_only(client, hospital):
    client.force_login(hospital.carol)

    page = client.get("/accounts/staff/").content.decode()

    assert "alice" in page
    assert "dave" in page
    assert ">bob<" not in page


def test_staff_list_shows_a_locked_account(client, hospital):
    _lock(hospital.alice)
    client.force_login(hospital.frank)

    page = client.get("/accounts/staff/?q=alice").content.decode()

    assert "Locked until" in page
    assert "Unlock" in page
    assert ">bob<" not in page


def test_administrator_unlocks_an_account_which_can_then_log_in(client, hospital):
    _lock(hospital.alice)
    client.force_login(hospital.frank)

    response = client.post(f"/accounts/staff/{hospital.alice.pk}/unlock/")

    assert response.status_code == 302
    hospital.alice.refresh_from_db()
    assert hospital.alice.locked_until is None
    client.post("/accounts/logout/")
    assert (
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code
        == 302
    )


def test_password_change_keeps_the_user_logged_in(client, hospital):
    client.force_login(hospital.alice)

    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "Xin@Mima2026",
            "new_password2": "Xin@Mima2026",
        },
    )

    assert response.status_code == 302
    hospital.alice.refresh_from_db()
    assert hospital.alice.check_password("Xin@Mima2026")
    assert client.get("/").status_code == 200


def test_admin_site_is_for_administrators_only(client, hospital):
    client.force_login(hospital.carol)
    assert client.get("/admin/").status_code == 302

    client.force_login(hospital.frank)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/patients/patient/").status_code == 200
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 200
