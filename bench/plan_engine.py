#!/usr/bin/env python
"""Benchmark of the follow-up plan engine (F2.2, F2.3): 300,000 discharges through auto_enrol and
refresh_states.

    .venv/bin/python bench/plan_engine.py [--discharges 300000] [--keep]

Creates 10 departments with nurses, teams and one discharge plan each (4 steps: day 3, 7, 30, 90;
enrolment rules on some plans: diagnosis prefixes, age), then bulk-creates the patients and their
inpatient stays, discharged over the last 60 days (deterministic: the n-th row is always the same;
1 % call-opted-out, 0.5 % deceased). Runs in a fresh SQLite database in a temporary directory, or in
``DATABASE_URL`` when set. Times:

* ``auto_enrol``: enrolment + task generation (enrolments/s, tasks/s);
* ``auto_enrol`` again: the idempotent re-scan that finds nothing new;
* ``refresh_states`` five days later: pending → due → overdue and the overdue warnings (tasks/s
  over the open tasks it considers), then once more with nothing to move (its every-minute cost).

Prints the figures per wall-clock second and per CPU second, and their ratios to the reference
recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"
sys.path.insert(0, str(ROOT))

DEPARTMENTS = [
    ("CARD", "心内科", ["I21", "I25", "I63", "E11"]), ("ORTH", "骨科", []), ("NEUR", "神经内科", []),
    ("GSUR", "普外科", []), ("RESP", "呼吸内科", []), ("ENDO", "内分泌科", []),
    ("NEPH", "肾内科", []), ("GAST", "消化内科", []), ("ONCO", "肿瘤科", []), ("OBGY", "妇产科", []),
]  # fmt: skip
DIAGNOSES = ["I21.901", "I25.103", "S72.001", "I63.900", "K80.201", "J18.900", "E11.900", "C34.900"]
STEPS = [
    (3, "出院3天", "phone"),
    (7, "出院7天", "phone"),
    (30, "出院30天", "sms"),
    (90, "出院90天", "phone"),
]
NURSES_PER_DEPARTMENT = 4
BATCH = 5000


def reference() -> dict[str, tuple[float, float]]:
    """The reference figures of the plan engine section of bench/README.md: per key, the rate
    per wall-clock second and per CPU second, on lines such as
    ``plan_engine reference auto_enrol: 9,400/s wall, 11,000/s CPU``."""
    if not README.exists():
        return {}
    text = README.read_text(encoding="utf-8")
    found = {}
    for key in ("auto_enrol", "refresh_states"):
        match = re.search(
            rf"plan_engine reference {key}:\s*([\d,.]+)/s wall,\s*([\d,.]+)/s CPU", text
        )
        if match:
            found[key] = (
                float(match.group(1).replace(",", "")),
                float(match.group(2).replace(",", "")),
            )
    return found


def setup_hospital(now: dt.datetime):  # type: ignore[no-untyped-def]
    from careloop.accounts.choices import Role
    from careloop.accounts.models import Department, User
    from careloop.followup.models import Plan, PlanStep, Team

    departments = []
    for index, (code, name, prefixes) in enumerate(DEPARTMENTS):
        department = Department.objects.create(code=code, name=name)
        departments.append(department)
        nurses = [
            User(username=f"{code.lower()}_nurse{n}", role=Role.NURSE, password="!")
            for n in range(NURSES_PER_DEPARTMENT)
        ]
        User.objects.bulk_create(nurses)
        supervisor = User.objects.create(
            username=f"{code.lower()}_supervisor", role=Role.SUPERVISOR, password="!"
        )
        for user in [*nurses, supervisor]:
            user.departments.add(department)
        team = Team.objects.create(
            name=f"{name}随访组", department=department, supervisor=supervisor
        )
        team.members.set(nurses)
        rules: dict = {"diagnosis_prefixes": prefixes} if prefixes else {}
        if index % 3 == 1:
            rules["min_age"] = 18
        plan = Plan.objects.create(
            name=f"{name}出院随访",
            department=department,
            rules=rules,
            team=team,
            assignment="even" if index % 2 == 0 else "pool",
        )
        PlanStep.objects.bulk_create(
            PlanStep(plan=plan, order=order, title=title, day_offset=day, channel=channel)
            for order, (day, title, channel) in enumerate(STEPS, start=1)
        )
    return departments


def _insert(model, rows: list[dict], now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Multi-row INSERT of ``rows`` (attname → value); other columns get their field default."""
    from careloop.followup.bulk import insert_rows

    fields = [f for f in model._meta.concrete_fields if not f.primary_key or rows[0].get(f.attname)]
    defaults = {}
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            defaults[field.attname] = now
        else:
            defaults[field.attname] = field.get_default()  # "" for text, None when nullable
    names = [f.attname for f in fields]
    insert_rows(model, names, ([row.get(n, defaults[n]) for n in names] for row in rows))


def create_discharges(departments, count: int, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction
    from django.utils import timezone

    from careloop.patients.models import Encounter, Patient

    today = timezone.localdate(now)
    start_id = (Patient.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    for offset in range(0, count, BATCH):
        numbers = range(offset, min(offset + BATCH, count))
        patients = [
            {
                "id": start_id + n,
                "name": f"患者{n:06d}",
                "name_initials": "hz",
                "sex": "M" if n % 2 else "F",
                "birth_date": dt.date(1930 + n % 90, 1 + n % 12, 1 + n % 28),
                "phone": f"139{n:08d}",
                "call_opt_out": n % 100 == 7,
                "is_deceased": n % 200 == 11,
            }
            for n in numbers
        ]
        encounters = []
        for n in numbers:
            discharged = timezone.make_aware(
                dt.datetime.combine(today - dt.timedelta(days=n % 60), dt.time(8 + n % 10, n % 60))
            )
            encounters.append(
                {
                    "id": start_id + n,
                    "patient_id": start_id + n,
                    "encounter_no": f"ZY{n:08d}",
                    "kind": "inpatient",
                    "department_id": departments[n % len(departments)].pk,
                    "started_at": discharged - dt.timedelta(days=3 + n % 9),
                    "discharged_at": discharged,
                    "diagnosis_code": DIAGNOSES[n % len(DIAGNOSES)],
                    "diagnosis_name": "出院诊断",
                }
            )
        with transaction.atomic():
            _insert(Patient, patients, now)
            _insert(Encounter, encounters, now)
    if connection_is_postgres():
        _reset_sequences([Patient, Encounter])


def connection_is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def _reset_sequences(models) -> None:  # type: ignore[no-untyped-def]
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)


class Timed:
    """Wall-clock and process CPU seconds of a block, optionally profiled. On a shared machine
    the CPU figure is the steadier one (SQLite runs in this process, so it counts too)."""

    def __init__(self, profile: bool = False, lines: int = 20):
        self.profiler = cProfile.Profile() if profile else None
        self.lines = lines

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.profiler:
            self.profiler.disable()
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        if self.profiler:
            pstats.Stats(self.profiler).sort_stats("tottime").print_stats(self.lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discharges", type=int, default=300_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile", action="store_true", help="print profiles of auto_enrol and refresh_states"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="careloop-bench-plan-"))
    os.environ["CARELOOP_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "careloop.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from careloop.followup import services, states
    from careloop.followup.models import Enrollment, Notification, Task

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    now = timezone.now()

    with Timed() as setup:
        departments = setup_hospital(now)
        create_discharges(departments, args.discharges, now)
    print(f"setup: {args.discharges:,} discharges in {setup.wall:.1f} s")

    with Timed(args.profile) as enrol:
        enrolled = services.auto_enrol(now=now)
    tasks = Task.objects.count()
    assert enrolled == Enrollment.objects.count()
    print(
        f"auto_enrol: {enrolled:,} enrolments, {tasks:,} tasks in {enrol.wall:.1f} s "
        f"(CPU {enrol.cpu:.1f} s) = {enrolled / enrol.wall:,.0f} enrolments/s, "
        f"{tasks / enrol.wall:,.0f} tasks/s; per CPU second {enrolled / enrol.cpu:,.0f} "
        f"enrolments/s, {tasks / enrol.cpu:,.0f} tasks/s"
    )

    with Timed() as rescan:
        again = services.auto_enrol(now=now)
    assert again == 0 and Task.objects.count() == tasks, "auto_enrol is not idempotent"
    print(f"auto_enrol again: {again} new in {rescan.wall:.1f} s (idempotent re-scan)")

    later = now + dt.timedelta(days=5)
    open_tasks = Task.objects.filter(status__in=sorted(states.OPEN)).count()
    with Timed(args.profile, lines=15) as refresh:
        moved = services.refresh_states(now=later)
    notices = Notification.objects.count()
    print(
        f"refresh_states (+5 days): {moved['due']:,} → due, {moved['overdue']:,} → overdue, "
        f"{moved['warned']:,} warned ({notices:,} notifications) over {open_tasks:,} open tasks "
        f"in {refresh.wall:.1f} s (CPU {refresh.cpu:.1f} s) = {open_tasks / refresh.wall:,.0f} "
        f"tasks/s; per CPU second {open_tasks / refresh.cpu:,.0f} tasks/s"
    )

    with Timed() as idle:
        services.refresh_states(now=later)
    print(f"refresh_states again: {idle.wall:.2f} s (nothing to move)")

    figures = {
        "auto_enrol": (enrolled / enrol.wall, enrolled / enrol.cpu),
        "refresh_states": (open_tasks / refresh.wall, open_tasks / refresh.cpu),
    }
    for key, (ref_wall, ref_cpu) in reference().items():
        wall, cpu = figures[key]
        print(
            f"{key}: {wall:,.0f}/s, ratio to reference {ref_wall:,.0f}/s: {wall / ref_wall:.2f}; "
            f"per CPU second {cpu:,.0f}/s, ratio to reference {ref_cpu:,.0f}/s: {cpu / ref_cpu:.2f}"
        )

    if args.keep:
        print(f"kept {workdir}")
    else:
        connection.close()
        for path in sorted(workdir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
