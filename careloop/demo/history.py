"""Three months of follow-up work, replayed day by day through the follow-up services.

Each past day: the worker's jobs run in the morning (``refresh_states``, and ``auto_enrol`` every
other day), then the
nurses work their open tasks — most patients are reached and answer the questionnaire, some do
not pick up and are tried again, a few refuse or gave a wrong number, and some tasks are left
undone and become overdue. Tasks whose target day is today or later are left for today's nurses.

The services take the simulated time as ``now``; the creation timestamps they cannot set
(``auto_now_add`` of enrolments, tasks, warnings, records and responses) are moved to the
simulated time afterwards, so timelines and figures read as if the work had happened then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Collection, Iterator
from typing import Any

from django.db import models
from django.utils import timezone

from careloop.accounts.models import User
from careloop.demo import answers
from careloop.followup import states
from careloop.followup.choices import Outcome
from careloop.followup.models import Enrollment, FollowUpRecord, Notification, Task
from careloop.followup.services import (
    auto_enrol,
    mark_notifications_read,
    questionnaire_version,
    record_outcome,
    refresh_states,
)
from careloop.surveys.models import QuestionnaireVersion, Response

# Share of open tasks a nurse gets to on a given day.
WORK_DUE = 0.45
WORK_OVERDUE = 0.6
# What happens when a nurse calls (weights).
OUTCOMES: list[tuple[str, int]] = [
    (Outcome.REACHED, 760),
    (Outcome.NO_ANSWER, 140),
    (Outcome.BUSY, 50),
    (Outcome.CALL_BACK, 20),
    (Outcome.WRONG_NUMBER, 15),
    (Outcome.REFUSED, 15),
]
ABNORMAL_SHARE = 0.06
# The enrolment job runs every other night: new discharges wait a day at most, as in a hospital
# whose HIS sends its discharges in a nightly batch (and seeding takes half the time).
ENROL_EVERY = 2
NOTES: dict[str, tuple[str, ...]] = {
    Outcome.NO_ANSWER: ("无人接听", "响铃无人接听，稍后再拨", ""),
    Outcome.BUSY: ("占线", "正在通话中", ""),
    Outcome.CALL_BACK: ("患者在外，约定明天上午回电", "家属接听，患者正在休息"),
    Outcome.WRONG_NUMBER: ("空号", "号码有误，非本人"),
    Outcome.REFUSED: ("患者表示不需要随访", "家属拒绝随访"),
    Outcome.REACHED: ("", "", "", "患者恢复良好", "已提醒按时复查", "已做用药指导"),
}


# Creation times (``auto_now_add``) of what the morning jobs create, moved to the simulated morning.
STAMPED: list[tuple[type[models.Model], str]] = [
    (Enrollment, "enrolled_at"),
    (Task, "created_at"),
    (Notification, "created_at"),
]


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


class _Replay:
    def __init__(self, rng: random.Random, today: dt.date, untouched: Collection[int]):
        self.rng = rng
        self.today = today
        self.untouched = sorted(untouched)
        self.users: dict[int, User] = {}
        self.versions: dict[int, QuestionnaireVersion | None] = {}
        self.counts: Counter[str] = Counter()
        self.stamps: list[tuple[int, int | None, dt.datetime]] = []
        self.last_pk: dict[str, int] = {}

    def user(self, pk: int) -> User:
        if pk not in self.users:
            self.users[pk] = User.objects.get(pk=pk)
        return self.users[pk]

    def version(self, task: Task) -> QuestionnaireVersion | None:
        if task.step_id not in self.versions:
            self.versions[task.step_id] = questionnaire_version(task.step)
        return self.versions[task.step_id]

    def known(self, task: Task) -> dict[str, Any]:
        """Answers that follow from the stay: how the baby was born, whether insulin was given."""
        encounter = task.enrollment.encounter
        if encounter is None:
            return {}
        if encounter.diagnosis_code.startswith("O"):
            operated = encounter.surgeries.filter(code="74.1").exists()
            return {"delivery": "cesarean" if operated else "vaginal"}
        if encounter.diagnosis_code.startswith("E11"):
            return {"insulin": encounter.medications.filter(drug__contains="胰岛素").exists()}
        return {}

    def work_day(self, day: dt.date) -> None:
        """The nurses' calls of one past day, in task order."""
        rng = self.rng
        tasks = (
            Task.objects.filter(
                status__in=sorted(states.ACTIONABLE),
                assignee__isnull=False,
                target_date__lt=self.today,
            )
            .exclude(patient_id__in=self.untouched)
            .select_related("step", "enrollment__encounter")
            .order_by("deadline", "pk")
        )
        day_end = _at(day, 18)
        for task in tasks:
            if task.assignee_id is None:
                continue
            if task.next_attempt_at is not None and task.next_attempt_at > day_end:
                continue
            share = WORK_OVERDUE if task.status == states.OVERDUE else WORK_DUE
            if rng.random() >= share:
                continue
            self.call(task, day, self.user(task.assignee_id))

    def call(self, task: Task, day: dt.date, nurse: User) -> None:
        rng = self.rng
        when = _at(day, rng.randint(9, 16), rng.randrange(60))
        if task.next_attempt_at is not None and task.next_attempt_at > when:
            when = min(
                task.next_attempt_at + dt.timedelta(minutes=rng.randint(0, 40)), _at(day, 17, 30)
            )
        outcome = rng.choices([o for o, _w in OUTCOMES], weights=[w for _o, w in OUTCOMES])[0]
        kwargs: dict[str, Any] = {"note": rng.choice(NOTES[outcome])}
        version = self.version(task)
        if outcome == Outcome.REACHED and version is not None:
            kwargs["answers"] = answers.answer(
                rng,
                version.definition,
                on=day,
                abnormal=rng.random() < ABNORMAL_SHARE,
                known=self.known(task),
            )
        if outcome == Outcome.CALL_BACK:
            kwargs["callback_at"] = _at(day + dt.timedelta(days=1), rng.choice((9, 10, 14, 15)))
        record = record_outcome(task, outcome=outcome, acting_user=nurse, now=when, **kwargs)
        self.counts[f"follow-up records ({outcome})"] += 1
        self.stamps.append((record.pk, record.response_id, when))

    def stamp_new_rows(self, when: dt.datetime) -> None:
        """Date the enrolments, tasks and warnings the morning jobs just created at ``when``."""
        for model, field in STAMPED:
            last = self.last_pk.get(model.__name__, 0)
            rows = model._default_manager.all()
            rows.filter(pk__gt=last).update(**{field: when})
            self.last_pk[model.__name__] = (
                rows.order_by("-pk").values_list("pk", flat=True).first() or last
            )

    def read_old_warnings(self, now: dt.datetime) -> None:
        """The nurses have read the overdue warnings of tasks they finished since."""
        rows = Notification.objects.filter(
            read_at__isnull=True, task__status__in=sorted(states.FINAL)
        ).values_list("user_id", "pk")
        by_user: dict[int, list[int]] = {}
        for user_id, pk in rows:
            by_user.setdefault(user_id, []).append(pk)
        for user_id, ids in sorted(by_user.items()):
            mark_notifications_read(self.user(user_id), ids=ids, now=now)

    def backdate(self) -> None:
        """Give records and responses the simulated time instead of the seeding time."""
        records = [FollowUpRecord(pk=pk, recorded_at=when) for pk, _r, when in self.stamps]
        FollowUpRecord.objects.bulk_update(records, ["recorded_at"], batch_size=500)
        responses = [Response(pk=rid, submitted_at=when) for _pk, rid, when in self.stamps if rid]
        Response.objects.bulk_update(responses, ["submitted_at"], batch_size=500)


def simulate(
    rng: random.Random, *, now: dt.datetime, days: int, untouched: Collection[int] = ()
) -> Counter[str]:
    """Replay ``days`` days of follow-up up to ``now``; returns counts of what was created.

    Nobody calls the patients in ``untouched`` (ids): their tasks are overdue by now.
    """
    today = timezone.localdate(now)
    replay = _Replay(rng, today, untouched)
    with _quiet("careloop.followup"):
        _replay(replay, now=now, days=days)
    replay.counts["tasks"] = Task.objects.count()
    return replay.counts


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Keep the services' per-run info lines (dozens of replayed days) out of the console."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _replay(replay: _Replay, *, now: dt.datetime, days: int) -> None:
    today = replay.today
    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        morning = _at(day, 7)
        if back % ENROL_EVERY == 0:
            replay.counts["enrolments"] += auto_enrol(now=morning)
        refresh_states(now=morning)
        replay.stamp_new_rows(morning)
        replay.work_day(day)
    replay.counts["enrolments"] += auto_enrol(now=now)
    refresh_states(now=now)
    replay.backdate()
    replay.read_old_warnings(now)
