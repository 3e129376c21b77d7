from careloop.core.testing_english import client, english_messages  # noqa: F401
