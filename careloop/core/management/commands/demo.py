"""``careloop demo``: everything in one command, with a demo hospital (DESIGN.md, "Processes").

Creates the data directory, migrates the database, seeds the demo hospital (once), then runs the
web app, the background worker and — when installed — the telephony engine until Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from careloop.core import runner
from careloop.demo import data


class Command(BaseCommand):
    help = "Start CareLoop with a demo hospital: web app, worker and telephony engine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-seed", action="store_true", help="do not create the demo data")
        parser.add_argument(
            "--patients", type=int, default=2000, help="patients in a new demo hospital"
        )
        parser.add_argument("--no-engine", action="store_true", help="do not start the engine")
        parser.add_argument(
            "--no-simulator",
            action="store_true",
            help="do not start the simulated patients' phones (automated calls then go nowhere)",
        )
        parser.add_argument(
            "--simulator-sip",
            default=os.environ.get("CARELOOP_SIMULATOR_SIP_LISTEN", "127.0.0.1:5090"),
            help="SIP address of the simulated patients' phones (HOST:PORT)",
        )
        parser.add_argument("--worker-threads", type=int, default=2)
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="log every request (off by default: URLs may carry search terms)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with runner.stop_on_signals():
            try:
                self.prepare(options)
            except runner.Stop:
                self.stdout.write("已停止 Stopped.")
                return
        if not getattr(settings, "HOSPITAL_NAME", ""):
            # What automated calls say ("这里是示范医院心内科随访中心"); web and worker run here.
            settings.HOSPITAL_NAME = data.HOSPITAL
        status = runner.run_embedded(
            host=options["host"],
            port=options["port"],
            say=self.stdout.write,
            engine=not options["no_engine"],
            worker_threads=options["worker_threads"],
            access_log=options["access_log"],
            on_started=lambda: self.banner(
                options["host"], options["port"], simulator=options["simulator_sip"]
            ),
            simulator="" if options["no_simulator"] else options["simulator_sip"],
        )
        self.stdout.write("CareLoop 已停止 CareLoop stopped.")
        if status:
            sys.exit(status)

    def prepare(self, options: dict[str, Any]) -> None:
        data_dir = Path(settings.DATA_DIR)
        for folder in (data_dir, Path(settings.MEDIA_ROOT), Path(settings.STATIC_ROOT)):
            folder.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"数据目录 Data directory: {data_dir}")
        self.compile_messages()
        self.stdout.write("正在更新数据库 Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)
        if options["no_seed"]:
            return
        self.stdout.write("正在准备演示医院 Preparing the demo hospital…")
        started = time.monotonic()
        from careloop.demo.seed import seed_demo

        counts = seed_demo(patients=options["patients"])
        if counts:
            self.stdout.write(
                f"  {counts.get('patients', 0)} 位患者 patients, "
                f"{counts.get('encounters', 0)} 次就诊 encounters, "
                f"{counts.get('tasks', 0)} 条随访任务 follow-up tasks "
                f"({time.monotonic() - started:.1f} s)"
            )
        else:
            self.stdout.write("  演示医院已存在 The demo hospital already exists.")

    def compile_messages(self) -> None:
        """Compile translation catalogues that are missing or older than their .po file."""
        msgfmt = shutil.which("msgfmt")
        stale = [
            po
            for base in settings.LOCALE_PATHS
            for po in Path(base).glob("*/LC_MESSAGES/*.po")
            if not po.with_suffix(".mo").exists()
            or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
        ]
        if not stale:
            return
        if msgfmt is None:
            self.stdout.write(
                "注意 Note: 未找到 msgfmt，界面翻译可能不是最新。"
                "msgfmt (Debian package gettext) is missing; translations may be out of date."
            )
            return
        for po in stale:
            subprocess.run(
                [msgfmt, "--check-format", "-o", str(po.with_suffix(".mo")), str(po)], check=False
            )

    def banner(self, host: str, port: int, *, simulator: str = "") -> None:
        shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        url = f"http://{shown}:{port}/"
        width = max(len(name) for name in data.LOGIN_ROLES) + 2
        lines = [
            "",
            "=" * 72,
            f"  CareLoop 随访系统已启动  CareLoop is running:  {url}",
            "",
            f"  演示账号 Demo logins — 密码 password: {data.PASSWORD}",
            *(f"    {name.ljust(width)}{role}" for name, role in data.LOGIN_ROLES.items()),
            "",
            *self.simulator_lines(url, simulator),
            "  按 Ctrl-C 停止 Press Ctrl-C to stop.",
            "=" * 72,
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    @staticmethod
    def simulator_lines(url: str, simulator: str) -> list[str]:
        """What the banner says about the simulated patients, when automated calls reach them."""
        if not simulator or settings.CC_PATIENT_DIAL != f"sip:{{number}}@{simulator}":
            return []
        return [
            f"  模拟患者 Simulated patients: SIP {simulator}",
            "    自动电话随访拨给模拟患者：约七成接听并按键回答（部分报告发热，触发异常预警），"
            "其余占线、无人接听或空号（转护士跟进）。",
            "    Automated follow-up calls go to simulated patients: about 70 % answer and press "
            "their answers (some report a fever and raise an alert); the others are busy, never "
            "answer or are wrong numbers (handed to nurses).",
            "    几分钟后查看 Look after a few minutes: "
            f"{url}followup/ (supervisor), {url}alerts/ (doctor_cardio / admin)",
            "    演示的联系时段为全天；真实医院请在联系策略页面设置自己的时段 "
            f"The demo calls at any hour; a real hospital sets its contact hours at {url}outreach/policy/",
            "",
        ]
