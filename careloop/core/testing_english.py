"""Fixtures for test modules that assert on English msgids.

The UI is Simplified Chinese by default; an app whose tests compare page text with the English
msgids imports these into its ``tests/conftest.py``::

    from careloop.core.testing_english import client, english_messages  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english_messages() -> Iterator[None]:
    """Assert on the English msgids; the zh_Hans catalogue translates them at run time."""
    with translation.override("en"):
        yield


@pytest.fixture
def client(client: Any, settings: Any) -> Any:
    """Pages in English, so the assertions hold once the zh_Hans catalogue translates them."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client
