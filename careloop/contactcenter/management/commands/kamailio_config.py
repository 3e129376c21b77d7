"""``careloop manage kamailio_config``: write Kamailio's configuration for the agents' phones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from careloop.contactcenter import kamailio


def _hostport(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host, int(port)


class Command(BaseCommand):
    help = "Write kamailio.cfg, users.cfg and dispatcher.list into <CARELOOP_DATA_DIR>/kamailio/"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listen", default="127.0.0.1:5060", help="Kamailio's SIP address")
        parser.add_argument("--domain", default=None, help="SIP domain of the agents")
        parser.add_argument(
            "--engine",
            action="append",
            default=None,
            help="an engine's SIP address (repeat for several engines); default 127.0.0.1:5070",
        )
        parser.add_argument("--output", default=None, help="directory (default the data dir)")
        parser.add_argument(
            "--presence", action="store_true", help="read registrations (kamcmd ul.dump) instead"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from careloop.contactcenter.services import sip_domain

        config = kamailio.KamailioSettings(
            listen=_hostport(options["listen"], 5060),
            domain=options["domain"] or sip_domain(),
            engines=tuple(_hostport(e, 5060) for e in (options["engine"] or ["127.0.0.1:5070"])),
            directory=Path(options["output"]) if options["output"] else None,
        )
        if options["presence"]:
            count = kamailio.refresh_presence(config)
            self.stdout.write(f"{count} registered")
            return
        path = kamailio.write_config(config)
        self.stdout.write(f"{path}\nkamailio -f {path} -DD -E")
