"""The ``careloop`` console command.

careloop demo [--port 8000]        start everything with a demo hospital (SQLite, no other server)
careloop web [--port 8000]         the ASGI web app only
careloop worker                    the Huey consumer
careloop engine [...]              the telephony engine (no Django; see docs/engine.md)
careloop import patients FILE      import patients from xlsx/csv (--json for a machine-readable report)
careloop simulate-patients [...]   simulated patients' phones answering automated calls (demo; see
                                   careloop/demo/simulator.py: --sip-listen 127.0.0.1:5090,
                                   --answer-rate 0.7, --busy-rate, --no-answer-rate, --unwell-rate …)
careloop manage ...                any Django management command
"""

from __future__ import annotations

import os
import sys


def _django(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "careloop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["careloop", *argv])


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return
    command, rest = args[0], args[1:]
    if command == "engine":
        from careloop.engine.cli import main as engine_main

        sys.exit(engine_main(rest))
    if command == "manage":
        _django(rest)
    elif command == "import":
        if not rest or rest[0] != "patients":
            sys.exit("usage: careloop import patients FILE [--json] [--mapping JSON]")
        _django(["import_patients", *rest[1:]])
    elif command == "simulate-patients":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "careloop.settings")
        import django

        django.setup()
        from careloop.demo.simulator import main as simulate

        sys.exit(simulate(rest))
    elif command in {"demo", "web", "worker"}:
        _django([{"demo": "demo", "web": "web", "worker": "run_huey"}[command], *rest])
    else:
        sys.exit(f"careloop: unknown command {command!r}\n{__doc__}")


if __name__ == "__main__":
    main()
