"""Account screens for the shared permission test (careloop/core/screens.py).

The login page itself is public and tested in test_login.py.
"""

from careloop.core.screens import Screen


def _unlock_url(h):  # type: ignore[no-untyped-def]
    return f"/accounts/staff/{h.alice.pk}/unlock/"


SCREENS = [
    Screen(name="password_change", url=lambda h: "/accounts/password/", allowed="erin"),
    Screen(name="staff_list", url=lambda h: "/accounts/staff/", allowed="carol", denied="alice"),
    Screen(
        name="staff_unlock",
        url=_unlock_url,
        allowed="frank",
        denied="carol",
        method="post",
        ok_status=302,
    ),
]
