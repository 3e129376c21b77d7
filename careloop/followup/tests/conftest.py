"""Speed for this app's tests: the personas' passwords are hashed with a fast hasher."""

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 costs ~0.5 s per persona; these tests log in with force_login only.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
