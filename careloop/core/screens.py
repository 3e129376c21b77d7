"""The shared permission check applied to every screen (netbox-style).

Each app lists its screens in ``careloop/<app>/tests/screens.py`` as ``SCREENS = [Screen(...), ...]``.
``careloop/core/tests/test_screen_permissions.py`` collects them all and checks, for each one:

* anonymous → redirect to the login page;
* a persona without the permission (``denied``) → 403;
* with ``other_department`` given: the allowed persona asking for another department's record → 404;
* the allowed persona → 200 (or the ``ok_status`` given).

``url`` and ``other_department`` are callables taking the ``hospital`` fixture (see conftest.py) and
returning a URL; they create whatever rows they need with the factories of careloop/core/testing.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

UrlFactory = Callable[[Any], str]


@dataclass(frozen=True)
class Screen:
    name: str
    url: UrlFactory
    allowed: str  # persona attribute on the hospital fixture, e.g. "alice"
    denied: str | None = None  # persona lacking the permission, e.g. "erin" for a write screen
    other_department: UrlFactory | None = None  # a record of a department ``allowed`` cannot see
    method: str = "get"
    data: dict[str, Any] | None = None
    ok_status: int = 200
