import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english_messages():
    """Assert on the English msgids; the zh_Hans catalogue translates them at run time."""
    with translation.override("en"):
        yield


@pytest.fixture
def client(client, settings):
    """Pages in English, so the assertions hold once the zh_Hans catalogue translates them."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client
