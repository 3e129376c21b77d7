"""The idle timeout (F7.5): no request for SESSION_IDLE_TIMEOUT_SECONDS → logged out."""

from __future__ import annotations

import time

import pytest

from careloop.accounts.middleware import _KEY


@pytest.fixture
def short_timeout(settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 600


def _idle_for(client, seconds):
    session = client.session
    session[_KEY] = time.time() - seconds
    session.save()


def test_idle_user_is_logged_out_and_the_login_page_says_why(client, hospital, short_timeout):
    client.force_login(hospital.alice)
    assert client.get("/patients/").status_code == 200

    _idle_for(client, 601)
    response = client.get("/patients/")

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/patients/"
    page = client.get(response.url)
    assert "You were logged out after 10 minutes without activity." in page.content.decode()
    assert "_auth_user_id" not in client.session
    # The reason is shown once, not on every later visit to the login page.
    assert "without activity" not in client.get("/accounts/login/").content.decode()


def test_active_user_stays_logged_in(client, hospital, short_timeout):
    client.force_login(hospital.alice)
    client.get("/")

    _idle_for(client, 599)

    assert client.get("/patients/").status_code == 200
    assert time.time() - client.session[_KEY] < 5  # the request counted as activity


def test_htmx_request_after_idle_redirects_the_whole_page(client, hospital, short_timeout):
    client.force_login(hospital.alice)
    client.get("/")
    _idle_for(client, 601)

    response = client.get("/patients/?q=zs", headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_pages_tell_the_browser_the_timeout(client, hospital, short_timeout):
    client.force_login(hospital.alice)

    assert 'data-idle-timeout="600"' in client.get("/").content.decode()
