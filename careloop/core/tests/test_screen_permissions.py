"""One permission test for every screen of every app (see careloop/core/screens.py)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from django.conf import settings

import careloop
from careloop.core.screens import Screen


def _collect() -> list[Screen]:
    screens: list[Screen] = []
    for module in pkgutil.iter_modules(careloop.__path__):
        try:
            mod = importlib.import_module(f"careloop.{module.name}.tests.screens")
        except ModuleNotFoundError:
            continue
        screens.extend(mod.SCREENS)
    return screens


SCREENS = _collect()


def _request(client, screen: Screen, url: str):
    return getattr(client, screen.method)(url, data=screen.data or {})


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.name)
def test_anonymous_is_sent_to_login(client, hospital, screen):
    response = _request(client, screen, screen.url(hospital))
    assert response.status_code == 302
    assert response.url.startswith(
        settings.LOGIN_URL if "/" in settings.LOGIN_URL else "/accounts/login/"
    )


@pytest.mark.parametrize("screen", [s for s in SCREENS if s.denied], ids=lambda s: s.name)
def test_user_without_permission_gets_403(client, hospital, screen):
    client.force_login(getattr(hospital, screen.denied))
    assert _request(client, screen, screen.url(hospital)).status_code == 403


@pytest.mark.parametrize("screen", [s for s in SCREENS if s.other_department], ids=lambda s: s.name)
def test_other_departments_record_is_404(client, hospital, screen):
    client.force_login(getattr(hospital, screen.allowed))
    assert _request(client, screen, screen.other_department(hospital)).status_code == 404


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.name)
def test_allowed_user_gets_the_screen(client, hospital, screen):
    client.force_login(getattr(hospital, screen.allowed))
    assert _request(client, screen, screen.url(hospital)).status_code == screen.ok_status


def test_every_app_screen_is_listed():
    assert len(SCREENS) >= 1
