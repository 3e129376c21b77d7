#!/usr/bin/env python
"""One working day of a very large hospital's follow-up calls (issue 4 item 11), time compressed.

    .venv/bin/python bench/hospital_day.py                  # 1,200 discharges' follow-ups due today
    .venv/bin/python bench/hospital_day.py --quick          # 100
    .venv/bin/python bench/hospital_day.py --discharges 3000 --concurrency 120

What runs, all real: a fresh database (SQLite in a temporary directory, or ``DATABASE_URL``), the
web application in this process (uvicorn in a thread: the engine's webhooks land on
``/cc/engine/events/`` as in production), the telephony engine (``python -m careloop.engine``)
and the patient simulator (``careloop simulate-patients``: its own engine, real SIP and RTP,
RFC 4733 keys). Ten departments each have a plan whose step on day 3 after discharge is an
automated call with a six-question keypad questionnaire; ``--discharges`` patients were
discharged three days ago, so that many steps are due now.

1. **Automated calls first.** The minute job's work (``automated.schedule_due_tasks`` and
   ``dialler.dispatch``) runs in a loop, and again whenever a call ends (what ``dispatch_soon``
   does through Huey). The contact policy allows ``--concurrency`` calls at once, the ring time
   is ``--ring-timeout`` seconds, a busy or unanswered patient is called again after
   ``--retry-minutes`` (instead of hours) up to three calls, then the step goes to a nurse; a
   wrong number goes to a nurse at once. Patients: 70 % answer and press their answers (some
   unwell: a fever and a poor recovery raise alerts), 10 % busy, 12 % never answer, 8 % wrong
   numbers (``--answer-rate`` …).
2. **Nurses for the rest.** Every step handed to a nurse is called by her (``record_outcome``, as
   the task page does): reached with ``--nurse-reach-rate`` (a wrong number never), else tried
   again at the plan's interval up to its three attempts.

Prints the completion rate, the reach rates (automated / nurse), automated calls per hour, peak
concurrent calls, the engine's CPU (average and peak of 5-second windows from /proc, 100 % = one
core; with its recording encoder), alerts raised, and the ratio to the reference recorded in
bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"
sys.path.insert(0, str(ROOT))

DEPARTMENTS = [
    ("CARD", "心内科"), ("ORTH", "骨科"), ("NEUR", "神经内科"), ("GSUR", "普外科"),
    ("RESP", "呼吸内科"), ("ENDO", "内分泌科"), ("NEPH", "肾内科"), ("GAST", "消化内科"),
    ("ONCO", "肿瘤科"), ("OBGY", "妇产科"),
]  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
NURSES_PER_DEPARTMENT = 4
ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def udp_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children while they live (the engine's recording encoder)."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children(pid))


def reference() -> dict[str, float]:
    """``hospital_day reference: 1,234 calls/h, engine CPU 12 %`` in bench/README.md."""
    if not README.exists():
        return {}
    match = re.search(
        r"hospital_day reference:\s*([\d,.]+) calls/h,\s*engine CPU\s*([\d.]+)\s*%",
        README.read_text(encoding="utf-8"),
    )
    if not match:
        return {}
    return {"calls_per_hour": float(match.group(1).replace(",", "")), "cpu": float(match.group(2))}


# --- the hospital -------------------------------------------------------------------------------


def setup_hospital(discharges: int, now: dt.datetime, args: argparse.Namespace) -> int:
    """Departments, nurses, plans with an automated day-3 step, the discharges; returns the
    number of automated steps due now."""
    from django.db import transaction
    from django.utils import timezone

    from careloop.accounts.choices import Role
    from careloop.accounts.models import Department, User
    from careloop.demo.automated import IVR_DISCHARGE
    from careloop.followup import services, states
    from careloop.followup.choices import Channel
    from careloop.followup.models import Plan, PlanStep, Task, Team
    from careloop.outreach.models import ContactPolicy
    from careloop.patients.models import Encounter, Patient
    from careloop.surveys import services as surveys

    admin = User.objects.create(username="bench_admin", role=Role.ADMIN, password="!")
    questionnaire = surveys.create_questionnaire(
        code="ivr_discharge",
        title="出院后自动电话随访问卷",
        definition=IVR_DISCHARGE,
        acting_user=admin,
    )
    surveys.publish(questionnaire.versions.get(), acting_user=admin)
    departments = []
    for code, name in DEPARTMENTS:
        department = Department.objects.create(code=code, name=name)
        departments.append(department)
        nurses = [
            User(username=f"{code.lower()}_nurse{n}", role=Role.NURSE, password="!")
            for n in range(NURSES_PER_DEPARTMENT)
        ]
        User.objects.bulk_create(nurses)
        nurses = list(User.objects.filter(username__startswith=f"{code.lower()}_nurse"))
        for user in nurses:
            user.departments.add(department)
        team = Team.objects.create(name=f"{name}随访组", department=department)
        team.members.set(nurses)
        plan = Plan.objects.create(
            name=f"{name}出院3天自动电话随访",
            department=department,
            team=team,
            max_attempts=3,
            retry_interval_hours=2,
        )
        PlanStep.objects.create(
            plan=plan,
            order=1,
            title="出院第3天自动电话随访",
            day_offset=3,
            channel=Channel.IVR,
            questionnaire=questionnaire,
        )
    today = timezone.localdate(now)
    discharge_day = today - dt.timedelta(days=3)
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            Patient(
                name=SURNAMES[n % len(SURNAMES)] + "某" + "甲乙丙丁"[n % 4],
                name_initials="mj",
                sex="M" if n % 2 else "F",
                birth_date=dt.date(1940 + n % 60, 1 + n % 12, 1 + n % 28),
                phone=f"139{n:08d}",
                card_no=f"9{n:09d}",
            )
            for n in range(discharges)
        )
        if patients and patients[0].pk is None:
            ids = dict(Patient.objects.values_list("card_no", "pk"))
            for patient in patients:
                patient.pk = ids[patient.card_no]
        Encounter.objects.bulk_create(
            Encounter(
                patient=patient,
                encounter_no=f"ZY{n:08d}",
                kind="inpatient",
                department=departments[n % len(departments)],
                started_at=timezone.make_aware(
                    dt.datetime.combine(discharge_day - dt.timedelta(days=5), dt.time(9))
                ),
                discharged_at=timezone.make_aware(
                    dt.datetime.combine(discharge_day, dt.time(9 + n % 8, n % 60))
                ),
                diagnosis_code="I25.1",
                diagnosis_name="出院诊断",
            )
            for n, patient in enumerate(patients)
        )
    services.auto_enrol(now=now)
    services.refresh_states(now=now)
    ContactPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "windows": ALL_DAY,
            "max_per_day": 10,
            "max_per_week": 20,
            "automated_attempts": 3,
            "automated_retry_minutes": args.retry_minutes,
            "automated_concurrency": args.concurrency,
            "ring_timeout": args.ring_timeout,
        },
    )
    return (
        Task.objects.filter(channel=Channel.IVR)
        .filter(states.status_filter(states.ACTIONABLE, today))
        .count()
    )


# --- processes ----------------------------------------------------------------------------------


class Web:
    """The ASGI application under uvicorn in a thread (webhooks from the engine)."""

    def __init__(self) -> None:
        import uvicorn

        self.port = free_port(socket.SOCK_STREAM)
        config = uvicorn.Config(
            "careloop.asgi:application",
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_engine(workdir: Path, token: str, web_port: int) -> tuple[subprocess.Popen[bytes], str]:
    import json

    env = dict(os.environ)
    env["CARELOOP_ENGINE_API_TOKEN"] = token
    env["CARELOOP_ENGINE_WEBHOOK_SECRET"] = token
    sip, api = free_port(), free_port(socket.SOCK_STREAM)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "careloop.engine",
            "--sip-listen",
            f"127.0.0.1:{sip}",
            "--rtp-ports",
            "20000-31998",
            "--api-listen",
            f"127.0.0.1:{api}",
            "--webhook-url",
            f"http://127.0.0.1:{web_port}/cc/engine/events/",
            "--data-dir",
            str(workdir / "engine"),
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=open(workdir / "engine.log", "wb"),
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line:
        raise RuntimeError((workdir / "engine.log").read_text(errors="replace")[-3000:])
    return process, str(json.loads(line)["api"])


def start_simulator(workdir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "careloop.cli",
            "simulate-patients",
            "--sip-listen",
            f"127.0.0.1:{port}",
            "--rtp-ports",
            "32000-43998",
            "--answer-rate",
            str(args.answer_rate),
            "--busy-rate",
            str(args.busy_rate),
            "--no-answer-rate",
            str(args.no_answer_rate),
            "--wrong-number-rate",
            str(args.wrong_number_rate),
            "--unwell-rate",
            str(args.unwell_rate),
            "--data-dir",
            str(workdir / "patients"),
            "--log-level",
            "WARNING",
        ],
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "patients.log", "wb"),
    )
    deadline = time.monotonic() + 60
    while not udp_taken(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "patients.log").read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    return process, port


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Sampler:
    """Every second: engine CPU (process, and with its encoder), calls up in the engine."""

    def __init__(self, engine_pid: int, api: str, token: str, simulator_pid: int) -> None:
        self.engine_pid, self.api, self.token = engine_pid, api, token
        self.simulator_pid = simulator_pid
        self.samples: list[tuple[float, float, float, int]] = []  # t, cpu, tree cpu, calls
        self.sim_cpu: list[tuple[float, float]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def run(self) -> None:
        import httpx

        with httpx.Client(
            base_url=self.api, headers={"Authorization": f"Bearer {self.token}"}, timeout=5
        ) as http:
            while not self.stopped.is_set():
                try:
                    calls = int(http.get("/v1/health").json().get("calls", 0))
                except (httpx.HTTPError, ValueError):
                    calls = -1
                now = time.monotonic()
                self.samples.append(
                    (
                        now,
                        cpu_seconds(self.engine_pid),
                        tree_cpu_seconds(self.engine_pid),
                        calls,
                    )
                )
                sim = self.simulator_pid
                self.sim_cpu.append((now, sum(tree_cpu_seconds(p) for p in [sim, *children(sim)])))
                self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)

    def cpu(self, tree: bool = False, window: float = 5.0) -> tuple[float, float]:
        """Average and peak (``window``-second) CPU %, 100 % = one core."""
        index = 2 if tree else 1
        rows = self.samples
        if len(rows) < 2:
            return 0.0, 0.0
        avg = 100 * (rows[-1][index] - rows[0][index]) / (rows[-1][0] - rows[0][0])
        peak, start = 0.0, 0
        for end in range(1, len(rows)):
            while rows[end][0] - rows[start][0] > window and start < end - 1:
                start += 1
            span = rows[end][0] - rows[start][0]
            if span >= window * 0.8:
                peak = max(peak, 100 * (rows[end][index] - rows[start][index]) / span)
        return avg, max(peak, avg)

    def peak_calls(self) -> int:
        return max((row[3] for row in self.samples), default=0)


# --- the day ------------------------------------------------------------------------------------


def automated_phase(args: argparse.Namespace, total: int) -> dict[str, Any]:
    """Dial until no automated step is left open (or ``--max-minutes``)."""
    from django.db import close_old_connections

    from careloop.followup import states
    from careloop.followup.choices import Channel
    from careloop.followup.models import Task
    from careloop.outreach import automated, dialler
    from careloop.outreach.models import ContactAttempt

    woken = threading.Event()
    dialler.wake = woken.set  # what dispatch_soon does through Huey, without a consumer
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    last_report = started
    last_minute_job = 0.0
    placed = 0
    while time.monotonic() < deadline:
        woken.clear()
        if time.monotonic() - last_minute_job >= 60:
            # The minute job; retries are scheduled by the result handler when a call ends.
            last_minute_job = time.monotonic()
            automated.schedule_due_tasks()
        placed += dialler.dispatch()
        open_ivr = Task.objects.filter(channel=Channel.IVR, status__in=sorted(states.OPEN)).count()
        active = dialler.active_attempts().count()
        if time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            ended = ContactAttempt.objects.filter(state="ended").count()
            print(
                f"  {time.monotonic() - started:5.0f} s: {ended} calls ended, {active} up, "
                f"{open_ivr} of {total} automated steps open",
                flush=True,
            )
        if not open_ivr and not active:
            break
        woken.wait(1.0)
        close_old_connections()
    return {"seconds": time.monotonic() - started, "placed": placed}


def nurse_phase(args: argparse.Namespace) -> dict[str, int]:
    """Nurses call every step handed to them (record_outcome), reaching ``--nurse-reach-rate``."""
    from django.utils import timezone

    from careloop.demo.automated import IVR_DISCHARGE
    from careloop.demo.simulator import WRONG_NUMBER, Rates, persona_answers, persona_for
    from careloop.followup import services, states
    from careloop.followup.choices import Channel, Outcome
    from careloop.followup.models import Task

    rates = Rates(
        answer=args.answer_rate,
        busy=args.busy_rate,
        no_answer=args.no_answer_rate,
        wrong_number=args.wrong_number_rate,
        unwell=args.unwell_rate,
    )
    rng = random.Random(11)
    counts: Counter[str] = Counter()
    handed = list(
        Task.objects.filter(channel=Channel.PHONE, status__in=sorted(states.OPEN))
        .select_related("patient", "plan", "assignee")
        .order_by("pk")
    )
    counts["handed"] = len(handed)
    healthy = persona_answers(IVR_DISCHARGE, unwell=False)
    answers = {
        k: float(v) if not isinstance(v, bool | str | int) else v for k, v in healthy.items()
    }
    start = time.monotonic()
    for task in handed:
        persona = persona_for(task.patient.phone, rates)
        moment = timezone.now()
        nurse = task.assignee
        for attempt in range(task.plan.max_attempts):
            at = moment + dt.timedelta(hours=attempt * task.plan.retry_interval_hours)
            task.refresh_from_db()
            if task.status not in states.OPEN:
                break
            counts["nurse calls"] += 1
            if persona.behaviour == WRONG_NUMBER:
                services.record_outcome(
                    task, outcome=Outcome.WRONG_NUMBER, acting_user=nurse, now=at
                )
                counts["wrong numbers"] += 1
                break
            if rng.random() < args.nurse_reach_rate:
                services.record_outcome(
                    task, outcome=Outcome.REACHED, answers=answers, acting_user=nurse, now=at
                )
                counts["reached"] += 1
                break
            services.record_outcome(task, outcome=Outcome.NO_ANSWER, acting_user=nurse, now=at)
    counts["seconds"] = int(time.monotonic() - start)
    return dict(counts)


def results(total: int, phase: dict[str, Any], nurses: dict[str, int]) -> dict[str, Any]:
    from django.db.models import Count

    from careloop.alerts.models import Alert
    from careloop.contactcenter.models import Recording
    from careloop.followup import states
    from careloop.followup.choices import Channel, Outcome
    from careloop.followup.models import FollowUpRecord, Task
    from careloop.outreach.models import ContactAttempt

    by_result = dict(
        ContactAttempt.objects.filter(state="ended")
        .values_list("result")
        .annotate(n=Count("id"))
        .order_by()
    )
    reached = FollowUpRecord.objects.filter(outcome=Outcome.REACHED)
    talks = [
        (ended - answered).total_seconds()
        for answered, ended in ContactAttempt.objects.filter(
            state="ended", answered_at__isnull=False, ended_at__isnull=False
        ).values_list("answered_at", "ended_at")
    ]
    # A step called again after its result was in (the result handler had not run yet).
    repeated = sum(
        max(n - 1, 0)
        for n in ContactAttempt.objects.filter(result__in=("completed", "unreachable"))
        .values("task")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )
    return {
        "repeated": repeated,
        "talk_seconds": sum(talks) / len(talks) if talks else 0.0,
        "total": total,
        "done": Task.objects.filter(status=states.DONE).count(),
        "automated_reached": reached.filter(channel=Channel.IVR).count(),
        "nurse_reached": reached.filter(channel=Channel.PHONE).count(),
        "calls": sum(by_result.values()),
        "by_result": by_result,
        "answered": sum(
            n
            for r, n in by_result.items()
            if r not in ("busy", "no_answer", "unreachable", "rejected", "failed")
        ),
        "alerts": Alert.objects.count(),
        "alert_patients": Alert.objects.values("patient").distinct().count(),
        "recordings": Recording.objects.count(),
        "seconds": phase["seconds"],
        "nurses": nurses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discharges", type=int, default=1200)
    parser.add_argument("--quick", action="store_true", help="100 discharges")
    parser.add_argument("--concurrency", type=int, default=60, help="automated calls at once")
    parser.add_argument("--ring-timeout", type=int, default=10, help="seconds (compressed)")
    parser.add_argument("--retry-minutes", type=int, default=1, help="between automated calls")
    parser.add_argument("--answer-rate", type=float, default=0.70)
    parser.add_argument("--busy-rate", type=float, default=0.10)
    parser.add_argument("--no-answer-rate", type=float, default=0.12)
    parser.add_argument("--wrong-number-rate", type=float, default=0.08)
    parser.add_argument("--unwell-rate", type=float, default=0.10)
    parser.add_argument("--nurse-reach-rate", type=float, default=0.75)
    parser.add_argument("--max-minutes", type=float, default=40, help="give up the automated phase")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    discharges = 100 if args.quick else args.discharges

    workdir = Path(tempfile.mkdtemp(prefix="careloop-bench-day-"))
    os.environ["CARELOOP_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "careloop.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)
    token = secrets.token_urlsafe(24)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    now = timezone.now()
    started = time.monotonic()
    total = setup_hospital(discharges, now, args)
    print(
        f"setup: {discharges:,} discharges, {total:,} automated follow-up steps due "
        f"({time.monotonic() - started:.1f} s)",
        flush=True,
    )

    web = Web()
    engine = simulator = None
    sampler = None
    try:
        engine, api = start_engine(workdir, token, web.port)
        settings.ENGINE_URL, settings.ENGINE_TOKEN = api, token
        settings.ENGINE_WEBHOOK_SECRET = token
        simulator, sim_port = start_simulator(workdir, args)
        settings.CC_PATIENT_DIAL = f"sip:{{number}}@127.0.0.1:{sim_port}"
        print(
            f"automated calls: at most {args.concurrency} at once, ring {args.ring_timeout} s, "
            f"3 calls {args.retry_minutes} min apart, then a nurse",
            flush=True,
        )
        sampler = Sampler(engine.pid, api, token, simulator.pid).start()
        phase = automated_phase(args, total)
        sampler.stop()
        time.sleep(3)  # the last webhooks and recordings
        nurses = nurse_phase(args)
        report(results(total, phase, nurses), sampler, args)
    finally:
        if sampler is not None:
            sampler.stop()
        stop(simulator)
        stop(engine)
        web.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(result: dict[str, Any], sampler: Sampler, args: argparse.Namespace) -> None:
    total = max(result["total"], 1)
    hours = result["seconds"] / 3600
    nurses = result["nurses"]
    handed = nurses.get("handed", 0)
    cpu_avg, cpu_peak = sampler.cpu()
    tree_avg, tree_peak = sampler.cpu(tree=True)
    calls_per_hour = result["calls"] / hours if hours else 0.0
    sim = sampler.sim_cpu
    sim_avg = 100 * (sim[-1][1] - sim[0][1]) / (sim[-1][0] - sim[0][0]) if len(sim) > 1 else 0.0
    print(
        f"automated phase: {result['calls']:,} calls in {result['seconds'] / 60:.1f} min "
        f"= {calls_per_hour:,.0f} calls/h ({result['answered']:,} answered, "
        f"{result['talk_seconds']:.0f} s on average); "
        f"peak {sampler.peak_calls()} concurrent calls (limit {args.concurrency})"
    )
    print(
        "  results: "
        + ", ".join(f"{k or '?'} {v}" for k, v in sorted(result["by_result"].items()))
        + f"; steps called again after their result was in: {result['repeated']}"
    )
    print(
        f"completion rate: {result['done'] / total:.1%} ({result['done']:,} of {total:,} steps done)"
    )
    print(
        f"reach rate: automated {result['automated_reached'] / total:.1%} "
        f"({result['automated_reached']:,}); nurses {nurses.get('reached', 0) / max(handed, 1):.1%} "
        f"of the {handed:,} steps handed to them ({nurses.get('nurse calls', 0):,} nurse calls, "
        f"{nurses.get('wrong numbers', 0)} wrong numbers)"
    )
    print(
        f"engine CPU: avg {cpu_avg:.0f} % peak {cpu_peak:.0f} % (5 s windows, 100 % = one core); "
        f"with its recording encoder avg {tree_avg:.0f} % peak {tree_peak:.0f} %; "
        f"patient simulator (its engine included) avg {sim_avg:.0f} %"
    )
    print(
        f"alerts raised: {result['alerts']} for {result['alert_patients']} patients; "
        f"recordings {result['recordings']:,}"
    )
    ref = reference()
    if ref:
        print(
            f"ratio to reference: calls/h {calls_per_hour / ref['calls_per_hour']:.2f} "
            f"(reference {ref['calls_per_hour']:,.0f}); engine CPU per call "
            f"{(cpu_avg / max(calls_per_hour, 1)) / (ref['cpu'] / ref['calls_per_hour']):.2f} "
            f"(< 1: cheaper than the reference)"
        )


if __name__ == "__main__":
    sys.exit(main())
