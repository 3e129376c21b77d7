"""Reads of follow-up data and the department gate (``tasks_visible_to`` and friends).

States come from ``states.py`` only: lists filter and count by ``current_status``, never by their
own notion of "due" or "overdue". The figures of F2.7 are at the end, as aggregate queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncMonth
from django.http import Http404
from django.utils import timezone

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.accounts.queries import department_filter, department_ids
from careloop.followup import states
from careloop.followup.choices import EnrollmentStatus, Outcome
from careloop.followup.models import (
    Enrollment,
    FollowUpRecord,
    Notification,
    Plan,
    Task,
    Team,
)
from careloop.patients.choices import EncounterKind
from careloop.patients.models import Encounter

#: Roles that work follow-up tasks: the people a task can be assigned to.
WORKING_ROLES = (Role.NURSE, Role.SUPERVISOR)


# --- the gate ------------------------------------------------------------------------------------


def tasks_visible_to(user: User) -> QuerySet[Task]:
    """Tasks of the user's departments (every department for hospital-wide staff)."""
    return Task.objects.filter(department_filter(user))


def plans_visible_to(user: User) -> QuerySet[Plan]:
    return Plan.objects.filter(department_filter(user)).select_related("department", "team")


def teams_visible_to(user: User) -> QuerySet[Team]:
    return Team.objects.filter(department_filter(user)).select_related("department", "supervisor")


def enrollments_visible_to(user: User) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(department_filter(user, "plan__department"))


def _get_or_404(queryset: QuerySet[Any], pk: Any) -> Any:
    try:
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("Not found") from exc


def get_visible_task(user: User, pk: Any) -> Task:
    """The task, or 404 when it does not exist *or* belongs to another department."""
    return _get_or_404(
        tasks_visible_to(user).select_related(
            "patient", "plan", "step", "step__questionnaire", "assignee", "department", "enrollment"
        ),
        pk,
    )


def get_visible_plan(user: User, pk: Any) -> Plan:
    return _get_or_404(plans_visible_to(user), pk)


def get_visible_team(user: User, pk: Any) -> Team:
    return _get_or_404(teams_visible_to(user), pk)


def get_visible_enrollment(user: User, pk: Any) -> Enrollment:
    return _get_or_404(enrollments_visible_to(user).select_related("plan", "patient"), pk)


# --- states --------------------------------------------------------------------------------------


def with_current_status(tasks: QuerySet[Task], today: dt.date) -> QuerySet[Task]:
    """Annotate ``current_status`` (states.current_status_expression)."""
    return tasks.annotate(current_status=states.current_status_expression(today))


def counts_by_status(tasks: QuerySet[Task], today: dt.date) -> dict[str, int]:
    """Number of tasks in each state on ``today``, every state present (one query)."""
    rows = (
        with_current_status(tasks.order_by(), today)
        .values("current_status")  # type: ignore[misc]
        .annotate(n=Count("pk"))
        .values_list("current_status", "n")
    )
    counts = dict.fromkeys(states.TRANSITIONS, 0)
    counts.update(dict(rows))
    return counts


# --- workspace (F2.4) ----------------------------------------------------------------------------


def _urgency(today: dt.date, now: dt.datetime) -> Case:
    """Overdue first, then call-backs and retries whose time has come, then due tasks."""
    return Case(
        When(states.status_filter({states.OVERDUE}, today), then=Value(0)),
        When(next_attempt_at__lte=now, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def workspace_tasks(user: User, *, now: dt.datetime | None = None) -> QuerySet[Task]:
    """The user's queue for today: their due and overdue tasks not waiting for a later retry,
    plus call-backs whose time has come, most urgent first."""
    now = now or timezone.now()
    today = states.local_today(now)
    mine = tasks_visible_to(user).filter(assignee=user, status__in=sorted(states.OPEN))
    ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    queue = mine.filter(
        (states.status_filter(states.ACTIONABLE, today) & ready) | Q(next_attempt_at__lte=now)
    )
    return (
        with_current_status(queue, today)
        .annotate(urgency=_urgency(today, now))
        .select_related("patient", "plan", "step")
        .order_by("urgency", "deadline", "next_attempt_at", "pk")
    )


def pool_tasks(user: User, *, now: dt.datetime | None = None) -> QuerySet[Task]:
    """Unassigned due or overdue tasks of the user's departments, to claim."""
    now = now or timezone.now()
    today = states.local_today(now)
    tasks = (
        tasks_visible_to(user)
        .filter(assignee__isnull=True)
        .filter(states.status_filter(states.ACTIONABLE, today))
    )
    return (
        with_current_status(tasks, today)
        .annotate(urgency=_urgency(today, now))
        .select_related("patient", "plan", "step", "department")
        .order_by("urgency", "deadline", "pk")
    )


@dataclass
class WorkspaceCounts:
    """The figures at the top of the nurse's workspace."""

    due: int = 0
    overdue: int = 0
    callbacks: int = 0
    waiting: int = 0
    done_today: int = 0
    pool: int = 0


def workspace_counts(user: User, *, now: dt.datetime | None = None) -> WorkspaceCounts:
    """Counts of the user's queue in one aggregate query (plus one for the pool). Due, overdue
    and call-backs partition the queue: a task with a retry time counts as a call-back."""
    now = now or timezone.now()
    today = states.local_today(now)
    mine = tasks_visible_to(user).filter(assignee=user)
    no_retry = Q(next_attempt_at__isnull=True)
    totals = mine.aggregate(
        due=Count("pk", filter=states.status_filter({states.DUE}, today) & no_retry),
        overdue=Count("pk", filter=states.status_filter({states.OVERDUE}, today) & no_retry),
        callbacks=Count("pk", filter=Q(status__in=sorted(states.OPEN), next_attempt_at__lte=now)),
        waiting=Count("pk", filter=Q(status__in=sorted(states.OPEN), next_attempt_at__gt=now)),
        done_today=Count(
            "pk",
            filter=Q(status=states.DONE, completed_at__gte=_day_start(today)),
        ),
    )
    pool = pool_tasks(user, now=now).count()
    return WorkspaceCounts(pool=pool, **totals)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def unread_notifications(user: User, limit: int = 10) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user, read_at__isnull=True).order_by(
        "-created_at", "-pk"
    )[:limit]


# --- task list -----------------------------------------------------------------------------------

#: Extra choices of the task list's status filter beyond the seven states.
STATUS_GROUPS: dict[str, frozenset[str]] = {
    "open": states.OPEN,
    "failures": states.FAILED,
}


def filter_tasks(tasks: QuerySet[Task], data: dict[str, Any], today: dt.date) -> QuerySet[Task]:
    """Apply the cleaned data of ``forms.TaskFilterForm``."""
    status = data.get("status")
    if status:
        wanted = STATUS_GROUPS.get(status, frozenset({status}))
        tasks = tasks.filter(states.status_filter(wanted, today))
    if data.get("plan"):
        tasks = tasks.filter(plan=data["plan"])
    if data.get("department"):
        tasks = tasks.filter(department=data["department"])
    if data.get("channel"):
        tasks = tasks.filter(channel=data["channel"])
    assignee = data.get("assignee")
    if assignee == "none":
        tasks = tasks.filter(assignee__isnull=True)
    elif assignee:
        tasks = tasks.filter(assignee_id=assignee)
    if data.get("date_from"):
        tasks = tasks.filter(target_date__gte=data["date_from"])
    if data.get("date_to"):
        tasks = tasks.filter(target_date__lte=data["date_to"])
    return tasks


def task_list(user: User, data: dict[str, Any], today: dt.date) -> QuerySet[Task]:
    tasks = filter_tasks(tasks_visible_to(user), data, today)
    return (
        with_current_status(tasks, today)
        .select_related(
            "patient", "plan", "step", "assignee", "department", "enrollment__encounter"
        )
        .order_by("deadline", "pk")
    )


# --- people --------------------------------------------------------------------------------------


def assignable_staff(
    department_id: int | None = None, *, user: User | None = None
) -> QuerySet[User]:
    """Active nurses and supervisors who can work tasks of the department (or of the user's
    departments), for assignment and filters."""
    staff = User.objects.filter(is_active=True, role__in=WORKING_ROLES)
    if department_id is not None:
        staff = staff.filter(Q(departments=department_id) | Q(all_departments=True))
    elif user is not None:
        ids = department_ids(user)
        if ids is not None:
            staff = staff.filter(departments__in=ids)
    return staff.distinct().order_by("display_name", "username")


def department_staff(user: User) -> QuerySet[User]:
    """Active staff sharing a department with ``user`` (every active user for hospital-wide staff)."""
    staff = User.objects.filter(is_active=True)
    ids = department_ids(user)
    if ids is not None:
        staff = staff.filter(Q(departments__in=ids) | Q(all_departments=True))
    return staff.distinct().order_by("display_name", "username")


def patient_enrollments(user: User, patient_id: int) -> QuerySet[Enrollment]:
    return (
        enrollments_visible_to(user)
        .filter(patient_id=patient_id)
        .select_related("plan", "encounter")
        .annotate(
            open_tasks=Count("tasks", filter=Q(tasks__status__in=sorted(states.OPEN))),
            done_tasks=Count("tasks", filter=Q(tasks__status=states.DONE)),
            task_count=Count("tasks"),
        )
        .order_by("-enrolled_at", "-pk")
    )


def active_enrollment_count(plan: Plan) -> int:
    return plan.enrollments.filter(status=EnrollmentStatus.ACTIVE).count()


# --- figures (F2.7) ------------------------------------------------------------------------------
#
# Three populations, each counted once, in aggregate queries:
# * stays: inpatient encounters discharged in the period (出院患者随访率, 2023 national definition:
#   discharged inpatients followed up ÷ discharged inpatients, one count per stay; a stay is
#   followed up when any task of an enrolment on it is done);
# * tasks: follow-up tasks whose target date falls in the period (the period's workload), counted
#   by their current state; on-time = done within the window ÷ done;
# * attempts: contact records made in the period; reach rate = attempts reached ÷ attempts.


@dataclass(frozen=True)
class FigureFilter:
    """The period (inclusive dates, hospital calendar) and the optional filters of the figures."""

    date_from: dt.date
    date_to: dt.date
    department: Any = None
    plan: Any = None
    nurse: Any = None


def default_period(today: dt.date, days: int = 30) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=days - 1), today


def _percent(numerator: int | None, denominator: int | None) -> Decimal | None:
    if numerator is None or not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )


@dataclass
class FigureRow:
    """One line of figures: the whole period, or one nurse / department / plan / month."""

    key: Any = None
    label: str = ""
    discharged: int | None = None
    followed: int | None = None
    tasks: int = 0
    done: int = 0
    overdue: int = 0
    failed: int = 0
    on_time: int = 0
    attempts: int = 0
    reached: int = 0

    @property
    def followup_ratio(self) -> Decimal | None:
        return _percent(self.followed, self.discharged)

    @property
    def on_time_rate(self) -> Decimal | None:
        return _percent(self.on_time, self.done)

    @property
    def reach_rate(self) -> Decimal | None:
        return _percent(self.reached, self.attempts)


def _task_aggregates(today: dt.date) -> dict[str, Any]:
    return {
        "tasks": Count("pk"),
        "done": Count("pk", filter=Q(status=states.DONE)),
        "overdue": Count("pk", filter=states.status_filter({states.OVERDUE}, today)),
        "failed": Count("pk", filter=Q(status__in=sorted(states.FAILED))),
        "on_time": Count("pk", filter=states.done_on_time_condition()),
    }


def _record_aggregates() -> dict[str, Any]:
    return {
        "attempts": Count("pk"),
        "reached": Count("pk", filter=Q(outcome=Outcome.REACHED)),
    }


def figure_tasks(user: User, f: FigureFilter) -> QuerySet[Task]:
    tasks = tasks_visible_to(user).filter(target_date__gte=f.date_from, target_date__lte=f.date_to)
    if f.department:
        tasks = tasks.filter(department=f.department)
    if f.plan:
        tasks = tasks.filter(plan=f.plan)
    if f.nurse:
        tasks = tasks.filter(assignee=f.nurse)
    return tasks.order_by()


def figure_records(user: User, f: FigureFilter) -> QuerySet[FollowUpRecord]:
    records = FollowUpRecord.objects.filter(
        department_filter(user, "task__department"),
        recorded_at__gte=_day_start(f.date_from),
        recorded_at__lt=_day_start(f.date_to + dt.timedelta(days=1)),
    )
    if f.department:
        records = records.filter(task__department=f.department)
    if f.plan:
        records = records.filter(task__plan=f.plan)
    if f.nurse:
        records = records.filter(recorded_by=f.nurse)
    return records.order_by()


def figure_discharges(user: User, f: FigureFilter) -> tuple[QuerySet[Encounter], Exists]:
    """Inpatient stays discharged in the period, and the condition "followed up" (a done task
    of an enrolment on the stay exists).

    The plan and nurse filters narrow what counts as followed up (by this plan / by this nurse);
    the denominator stays every discharge of the visible or chosen department.
    """
    stays = Encounter.objects.filter(
        department_filter(user),
        kind=EncounterKind.INPATIENT,
        discharged_at__gte=_day_start(f.date_from),
        discharged_at__lt=_day_start(f.date_to + dt.timedelta(days=1)),
    )
    if f.department:
        stays = stays.filter(department=f.department)
    done = Task.objects.filter(enrollment__encounter=OuterRef("pk"), status=states.DONE)
    if f.plan:
        done = done.filter(plan=f.plan)
    if f.nurse:
        done = done.filter(assignee=f.nurse)
    return stays.order_by(), Exists(done)


def _discharge_aggregates(followed: Exists) -> dict[str, Any]:
    # The condition goes into the aggregate itself: an annotation referenced from an aggregate
    # filter is lost when Django wraps the query in a subquery.
    return {"discharged": Count("pk"), "followed": Count("pk", filter=followed)}


def figures_summary(user: User, f: FigureFilter, today: dt.date) -> FigureRow:
    """The period's figures in three aggregate queries."""
    row = FigureRow(label="")
    stays, followed = figure_discharges(user, f)
    for values in (
        figure_tasks(user, f).aggregate(**_task_aggregates(today)),
        figure_records(user, f).aggregate(**_record_aggregates()),
        stays.aggregate(**_discharge_aggregates(followed)),
    ):
        for name, value in values.items():
            setattr(row, name, value or 0)
    return row


def figure_status_counts(user: User, f: FigureFilter, today: dt.date) -> dict[str, int]:
    return counts_by_status(figure_tasks(user, f), today)


BREAKDOWNS = ("nurse", "department", "plan", "month")


def _month_key(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return value.replace(day=1)


def _group(queryset: QuerySet[Any], key: Any, aggregates: dict[str, Any]) -> dict[Any, dict]:
    rows = queryset.annotate(group_key=key).values("group_key").annotate(**aggregates)
    grouped: dict[Any, dict] = {}
    for row in rows:
        k = row.pop("group_key")
        if isinstance(k, dt.date):
            k = _month_key(k)
        target = grouped.setdefault(k, dict.fromkeys(aggregates, 0))
        for name, value in row.items():
            target[name] += value or 0
    return grouped


def breakdown(user: User, f: FigureFilter, today: dt.date, by: str) -> list[FigureRow]:
    """Figures per nurse, department, plan or month: one grouped query per population."""
    tz = timezone.get_current_timezone()
    keys: dict[str, tuple[Any, Any, Any]] = {
        # (task key, record key, discharge key or None)
        "nurse": (F("assignee_id"), F("recorded_by_id"), None),
        "department": (F("department_id"), F("task__department_id"), F("department_id")),
        "plan": (F("plan_id"), F("task__plan_id"), None),
        "month": (
            TruncMonth("target_date"),
            TruncMonth("recorded_at", tzinfo=tz),
            TruncMonth("discharged_at", tzinfo=tz),
        ),
    }
    if by not in keys:
        raise ValueError(f"unknown breakdown {by}")
    task_key, record_key, discharge_key = keys[by]
    grouped_tasks = _group(figure_tasks(user, f), task_key, _task_aggregates(today))
    grouped_records = _group(figure_records(user, f), record_key, _record_aggregates())
    grouped_stays = {}
    if discharge_key is not None:
        stays, followed = figure_discharges(user, f)
        grouped_stays = _group(stays, discharge_key, _discharge_aggregates(followed))
    rows: dict[Any, FigureRow] = {}
    for grouped in (grouped_tasks, grouped_records, grouped_stays):
        for k, values in grouped.items():
            row = rows.setdefault(k, FigureRow(key=k))
            for name, value in values.items():
                setattr(row, name, value)
    labels = _labels(by, [k for k in rows if k is not None])
    for k, row in rows.items():
        row.label = labels.get(k, "") if k is not None else ""
    return sorted(rows.values(), key=lambda r: (r.key is None, r.key if by == "month" else r.label))


def _labels(by: str, keys: list[Any]) -> dict[Any, str]:
    if by == "nurse":
        return {u.pk: str(u) for u in User.objects.filter(pk__in=keys)}
    if by == "department":
        return dict(Department.objects.filter(pk__in=keys).values_list("pk", "name"))
    if by == "plan":
        return dict(Plan.objects.filter(pk__in=keys).values_list("pk", "name"))
    return {k: k.strftime("%Y-%m") for k in keys}
