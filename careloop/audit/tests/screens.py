"""Audit screens for the shared permission test (careloop/core/screens.py)."""

from careloop.core.screens import Screen

SCREENS = [
    Screen(name="audit_list", url=lambda h: "/audit/", allowed="carol", denied="alice"),
    Screen(name="audit_list_admin", url=lambda h: "/audit/?action=login", allowed="frank"),
    Screen(name="audit_export", url=lambda h: "/audit/export/", allowed="carol", denied="erin"),
]
