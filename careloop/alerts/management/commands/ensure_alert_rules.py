"""``manage.py ensure_alert_rules``: seed the default alert rules for the sample questionnaires.

Idempotent; rules already present (even edited or deactivated) are left alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from careloop.alerts.services import ensure_default_rules


class Command(BaseCommand):
    help = "Create the default abnormal-answer alert rules that do not exist yet."

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_default_rules()
        self.stdout.write(f"{created} alert rules created")
