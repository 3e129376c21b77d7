"""``manage.py seed_demo``: create the demo hospital (idempotent)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from careloop.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Create the demo hospital: departments, staff, patients, plans and follow-up history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--patients", type=int, default=2000, help="number of patients (default 2000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        counts = seed_demo(patients=options["patients"])
        elapsed = time.monotonic() - started
        if not counts:
            self.stdout.write(
                "演示医院已存在，无需创建。The demo hospital already exists; nothing to do."
            )
            return
        for name, count in sorted(counts.items()):
            self.stdout.write(f"  {name}: {count}")
        self.stdout.write(
            self.style.SUCCESS(f"演示医院已创建 The demo hospital was created in {elapsed:.1f} s.")
        )
