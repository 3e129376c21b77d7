"""``careloop web``: the ASGI web app only (production runs worker and engine separately)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from careloop.core import runner


class Command(BaseCommand):
    help = "Serve the CareLoop web app (ASGI, uvicorn)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="log every request (off by default: URLs may carry search terms)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] > 1 and not settings.REDIS_URL:
            self.stderr.write(
                "Note: several workers without REDIS_URL do not share live events "
                "(the in-memory channel layer is per process)."
            )
        with runner.stop_on_signals():
            try:
                runner.serve(
                    host=options["host"],
                    port=options["port"],
                    workers=options["workers"],
                    access_log=options["access_log"],
                )
            except runner.Stop:
                pass
