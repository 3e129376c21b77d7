"""Every state change of follow-up enrolments and tasks (F2.2, F2.3).

The task state model is in ``states.py``; this module applies it. Plans and teams are master data
saved by their forms (see views/plans.py).
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from careloop.accounts.choices import Role
from careloop.accounts.models import User
from careloop.followup import states
from careloop.followup.bulk import insert_rows
from careloop.followup.choices import (
    Assignment,
    Channel,
    EnrollmentStatus,
    NotificationKind,
    Outcome,
    Trigger,
)
from careloop.followup.models import (
    Enrollment,
    FollowUpRecord,
    Notification,
    Plan,
    PlanStep,
    Task,
)
from careloop.patients.choices import EncounterKind
from careloop.patients.models import Encounter, Patient, Surgery
from careloop.surveys.choices import ResponseChannel
from careloop.surveys.models import QuestionnaireVersion

logger = logging.getLogger(__name__)

CALL_CHANNELS: frozenset[str] = frozenset({Channel.PHONE.value, Channel.IVR.value})
ALL_CHANNELS: frozenset[str] = frozenset(Channel.values)
RESPONSE_CHANNEL: dict[str, str] = {
    Channel.PHONE.value: ResponseChannel.AGENT.value,
    Channel.IVR.value: ResponseChannel.IVR.value,
    Channel.SMS.value: ResponseChannel.SMS.value,
    Channel.WEB.value: ResponseChannel.WEB.value,
}
#: Encounters read per transaction by ``auto_enrol``; bounds memory and lock time.
AUTO_ENROL_BATCH = 5000
OVERDUE_WARNING_BATCH = 5000


class FollowupError(Exception):
    """A follow-up operation refused for a reason the user can read."""


# --- small helpers -------------------------------------------------------------------------------


def day_start(day: dt.date) -> dt.datetime:
    """Local (Asia/Shanghai) midnight of ``day``, aware."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _user_or_none(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


def blocked_channels(patient: Patient | Any) -> frozenset[str]:
    """Channels this patient must not receive: all when deceased or do-not-contact, calls when
    opted out of calls, SMS when opted out of SMS. Web questionnaires stay allowed otherwise."""
    if patient.is_deceased or patient.do_not_contact:
        return ALL_CHANNELS
    blocked: set[str] = set()
    if patient.call_opt_out:
        blocked |= CALL_CHANNELS
    if patient.sms_opt_out:
        blocked.add(Channel.SMS.value)
    return frozenset(blocked)


def _blocked(sms_opt_out: bool, call_opt_out: bool) -> frozenset[str]:
    blocked: set[str] = set()
    if call_opt_out:
        blocked |= CALL_CHANNELS
    if sms_opt_out:
        blocked.add(Channel.SMS.value)
    return frozenset(blocked)


def _normalise_codes(values: Iterable[Any] | None) -> list[str]:
    return [str(v).strip().upper() for v in values or [] if str(v).strip()]


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years of age on ``day``."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def age_matches(rules: dict[str, Any], birth_date: dt.date | None, anchor: dt.date) -> bool:
    """The plan's age range at the anchor date; a patient without a birth date fails an age rule
    (their age cannot be checked) and passes when the plan has none."""
    min_age, max_age = rules.get("min_age"), rules.get("max_age")
    if min_age is None and max_age is None:
        return True
    if birth_date is None:
        return False
    age = age_on(birth_date, anchor)
    return (min_age is None or age >= int(min_age)) and (max_age is None or age <= int(max_age))


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def anchor_for(plan: Plan, encounter: Encounter | None) -> dt.date | None:
    """The anchor date an encounter gives this plan's trigger, or None when it gives none."""
    if encounter is None:
        return None
    if plan.trigger == Trigger.DISCHARGE:
        return timezone.localdate(encounter.discharged_at) if encounter.discharged_at else None
    if plan.trigger == Trigger.SURGERY:
        surgeries = encounter.surgeries.order_by("performed_at")
        codes = _normalise_codes((plan.rules or {}).get("surgery_codes"))
        if codes:
            surgeries = surgeries.filter(_prefix_q("code", codes))
        first = surgeries.first()
        return timezone.localdate(first.performed_at) if first else None
    if plan.trigger == Trigger.OUTPATIENT:
        return timezone.localdate(encounter.started_at)
    return None


def _prefix_q(field: str, prefixes: Sequence[str]) -> Q:
    query = Q()
    for prefix in prefixes:
        query |= Q(**{f"{field}__istartswith": prefix})
    return query


# --- assignment ----------------------------------------------------------------------------------


class EvenDistributor:
    """Hands enrolments to the team member with the fewest open tasks; ties go to the lowest user
    id, so the result is deterministic. A whole enrolment goes to one nurse: the same voice calls
    the patient at every step."""

    def __init__(self, member_ids: Iterable[int]):
        ids = sorted(set(member_ids))
        counts = dict.fromkeys(ids, 0)
        if ids:
            rows = (
                Task.objects.filter(assignee_id__in=ids, status__in=sorted(states.OPEN))
                .values("assignee_id")
                .annotate(n=Count("pk"))
            )
            for row in rows:
                counts[row["assignee_id"]] = row["n"]
        self._heap = [(count, user_id) for user_id, count in counts.items()]
        heapq.heapify(self._heap)

    @classmethod
    def for_plan(cls, plan: Plan) -> EvenDistributor | None:
        """The distributor of an even plan with a team of active members; None means the pool."""
        if plan.assignment != Assignment.EVEN or plan.team_id is None:
            return None
        members = list(
            User.objects.filter(teams=plan.team_id, is_active=True).values_list("pk", flat=True)
        )
        return cls(members) if members else None

    def next(self, open_tasks: int) -> int | None:
        if not self._heap:
            return None
        count, user_id = heapq.heappop(self._heap)
        heapq.heappush(self._heap, (count + open_tasks, user_id))
        return user_id


# --- enrolment -----------------------------------------------------------------------------------


def _window_closed_reason() -> str:
    return _("The window had already closed when the patient was enrolled.")


def task_window(
    anchor: dt.date, step: PlanStep, today: dt.date, *, closed_reason: str | None = None
) -> tuple[dt.date, dt.date, dt.date, str, str]:
    """Target date, window start, deadline, initial state and reason of a step's task.

    target = anchor + day; the window from the step's tolerance; the state from the calendar. A
    step whose deadline has already passed is born cancelled, with the reason, rather than
    overdue: nobody could have done it."""
    target = anchor + dt.timedelta(days=step.day_offset)
    window_start = target - dt.timedelta(days=step.window_before)
    deadline = target + dt.timedelta(days=step.window_after)
    if deadline < today:
        return (
            target,
            window_start,
            deadline,
            states.CANCELLED,
            (closed_reason if closed_reason is not None else _window_closed_reason()),
        )
    status = states.time_state(window_start=window_start, deadline=deadline, today=today)
    return target, window_start, deadline, status, ""


def build_tasks(
    *,
    enrollment: Enrollment,
    plan: Plan,
    steps: Sequence[PlanStep],
    today: dt.date,
    now: dt.datetime,
    assignee_id: int | None,
) -> list[Task]:
    """Unsaved tasks of ``steps`` for the enrolment (see ``task_window``)."""
    tasks = []
    for step in steps:
        target, window_start, deadline, status, reason = task_window(
            enrollment.anchor_date, step, today
        )
        tasks.append(
            Task(
                enrollment=enrollment,
                step=step,
                patient_id=enrollment.patient_id,
                plan=plan,
                department_id=plan.department_id,
                assignee_id=assignee_id,
                channel=step.channel,
                status=status,
                target_date=target,
                window_start=window_start,
                deadline=deadline,
                end_reason=reason,
                completed_at=now if status == states.CANCELLED else None,
            )
        )
    return tasks


def _usable_steps(steps: Sequence[PlanStep], blocked: frozenset[str]) -> list[PlanStep]:
    return [step for step in steps if step.channel not in blocked]


def _open_step_count(anchor: dt.date, steps: Sequence[PlanStep], today: dt.date) -> int:
    return sum(
        1 for s in steps if anchor + dt.timedelta(days=s.day_offset + s.window_after) >= today
    )


def enrol(
    plan: Plan,
    patient: Patient,
    *,
    anchor_date: dt.date,
    encounter: Encounter | None = None,
    acting_user: User | None = None,
    now: dt.datetime | None = None,
) -> Enrollment:
    """Put a patient on a plan and create one task per step (F2.2).

    Idempotent: the same plan + encounter (or, without an encounter, the same plan + patient +
    anchor date while active) returns the existing enrolment. Refused with FollowupError for an
    inactive plan, a plan without steps, a patient who is deceased or do-not-contact, a patient
    opted out of every channel of the plan, or an anchor so old that every window has closed.
    """
    now = now or timezone.now()
    today = states.local_today(now)
    if encounter is not None and encounter.patient_id != patient.pk:
        raise FollowupError(_("The encounter belongs to another patient."))
    with transaction.atomic():
        # One enrolment at a time per plan: keeps the idempotency check and the even
        # distribution's counts true when auto_enrol runs at the same moment.
        plan = Plan.objects.select_for_update(of=("self",)).select_related("team").get(pk=plan.pk)
        existing = _existing_enrollment(plan, patient, encounter, anchor_date)
        if existing is not None:
            return existing
        if not plan.is_active:
            raise FollowupError(_("The plan %(plan)s is not active.") % {"plan": plan.name})
        steps = list(plan.steps.order_by("order", "pk"))
        if not steps:
            raise FollowupError(_("The plan %(plan)s has no steps.") % {"plan": plan.name})
        if patient.is_deceased:
            raise FollowupError(_("The patient is deceased."))
        if patient.do_not_contact:
            raise FollowupError(_("The patient must not be contacted."))
        usable = _usable_steps(steps, blocked_channels(patient))
        if not usable:
            raise FollowupError(_("The patient has opted out of every channel of this plan."))
        open_steps = _open_step_count(anchor_date, usable, today)
        if not open_steps:
            raise FollowupError(
                _("Every step's window has closed for anchor date %(date)s.")
                % {"date": anchor_date.isoformat()}
            )
        try:
            with transaction.atomic():
                enrollment = Enrollment.objects.create(
                    plan=plan,
                    patient=patient,
                    encounter=encounter,
                    anchor_date=anchor_date,
                    enrolled_by=_user_or_none(acting_user),
                    enrolled_at=now,
                )
        except IntegrityError:
            # Enrolled by a concurrent worker between the check and the insert.
            existing = _existing_enrollment(plan, patient, encounter, anchor_date)
            if existing is None:
                raise
            return existing
        distributor = EvenDistributor.for_plan(plan)
        assignee_id = distributor.next(open_steps) if distributor else None
        Task.objects.bulk_create(
            build_tasks(
                enrollment=enrollment,
                plan=plan,
                steps=usable,
                today=today,
                now=now,
                assignee_id=assignee_id,
            )
        )
    logger.info("enrolment %s created on plan %s", enrollment.pk, plan.pk)
    return enrollment


def _existing_enrollment(
    plan: Plan, patient: Patient, encounter: Encounter | None, anchor_date: dt.date
) -> Enrollment | None:
    if encounter is not None:
        return Enrollment.objects.filter(plan=plan, encounter=encounter).first()
    return Enrollment.objects.filter(
        plan=plan,
        patient=patient,
        encounter__isnull=True,
        anchor_date=anchor_date,
        status=EnrollmentStatus.ACTIVE,
    ).first()


def _auto_candidates(
    plan: Plan, steps: Sequence[PlanStep], *, earliest: dt.date, today: dt.date
) -> QuerySet[Encounter] | None:
    """Encounters of the plan's department matching its trigger and rules, anchored between
    ``earliest`` and ``today`` and not yet enrolled on it; rows of (pk, patient, anchor time,
    birth date, SMS opt-out, call opt-out). One set-based query; the exact age check and the
    per-step channel opt-outs are applied to the rows (see ``_enrol_rows``)."""
    rules = plan.rules or {}
    start, end = day_start(earliest), day_start(today + dt.timedelta(days=1))
    encounters = Encounter.objects.filter(
        department_id=plan.department_id,
        patient__is_deceased=False,
        patient__do_not_contact=False,
    )
    surgery_codes = _normalise_codes(rules.get("surgery_codes"))
    if plan.trigger == Trigger.DISCHARGE:
        encounters = encounters.filter(
            kind=EncounterKind.INPATIENT, discharged_at__gte=start, discharged_at__lt=end
        ).annotate(anchor_at=F("discharged_at"))
    elif plan.trigger == Trigger.OUTPATIENT:
        encounters = encounters.filter(
            kind=EncounterKind.OUTPATIENT, started_at__gte=start, started_at__lt=end
        ).annotate(anchor_at=F("started_at"))
    elif plan.trigger == Trigger.SURGERY:
        surgeries = Surgery.objects.filter(
            encounter=OuterRef("pk"), performed_at__gte=start, performed_at__lt=end
        )
        if surgery_codes:
            surgeries = surgeries.filter(_prefix_q("code", surgery_codes))
        encounters = encounters.annotate(
            anchor_at=Subquery(surgeries.order_by("performed_at").values("performed_at")[:1])
        ).filter(anchor_at__isnull=False)
    else:
        return None
    if surgery_codes and plan.trigger != Trigger.SURGERY:
        encounters = encounters.filter(
            Exists(
                Surgery.objects.filter(encounter=OuterRef("pk")).filter(
                    _prefix_q("code", surgery_codes)
                )
            )
        )
    prefixes = _normalise_codes(rules.get("diagnosis_prefixes"))
    if prefixes:
        encounters = encounters.filter(_prefix_q("diagnosis_code", prefixes))
    # Coarse age bounds in SQL (anchors lie between earliest and today); exact check per row.
    if rules.get("min_age") is not None:
        encounters = encounters.filter(
            patient__birth_date__lte=_years_before(today, int(rules["min_age"]))
        )
    if rules.get("max_age") is not None:
        encounters = encounters.filter(
            patient__birth_date__gt=_years_before(earliest, int(rules["max_age"]) + 1)
        )
    # Patients opted out of every channel the plan uses are never candidates.
    channels = {step.channel for step in steps}
    if channels <= CALL_CHANNELS:
        encounters = encounters.exclude(patient__call_opt_out=True)
    elif channels == {Channel.SMS.value}:
        encounters = encounters.exclude(patient__sms_opt_out=True)
    elif channels <= CALL_CHANNELS | {Channel.SMS.value}:
        encounters = encounters.exclude(patient__call_opt_out=True, patient__sms_opt_out=True)
    return encounters.filter(
        ~Exists(Enrollment.objects.filter(plan_id=plan.pk, encounter_id=OuterRef("pk")))
    )


_ENROLLMENT_COLUMNS = (
    "plan_id",
    "patient_id",
    "encounter_id",
    "anchor_date",
    "status",
    "enrolled_at",
    "end_reason",
)
_TASK_COLUMNS = (
    "enrollment_id",
    "step_id",
    "patient_id",
    "plan_id",
    "department_id",
    "assignee_id",
    "channel",
    "status",
    "target_date",
    "window_start",
    "deadline",
    "attempts",
    "outcome",
    "completed_at",
    "end_reason",
    "created_at",
    "updated_at",
)


def _enrol_rows(
    plan: Plan,
    steps: Sequence[PlanStep],
    rows: list[tuple[Any, ...]],
    *,
    today: dt.date,
    now: dt.datetime,
) -> int:
    """Insert the enrolments and tasks of candidate rows (see ``_auto_candidates``) with
    multi-row INSERTs (bulk.py): this is the path 300,000 discharges take."""
    rules = plan.rules or {}
    accepted: list[tuple[int, int, dt.date, list[PlanStep], int]] = []
    for encounter_id, patient_id, anchor_at, birth_date, sms_out, call_out in rows:
        anchor = timezone.localdate(anchor_at)
        if not age_matches(rules, birth_date, anchor):
            continue
        usable = _usable_steps(steps, _blocked(sms_out, call_out))
        open_steps = _open_step_count(anchor, usable, today)
        if open_steps:
            accepted.append((encounter_id, patient_id, anchor, usable, open_steps))
    if not accepted:
        return 0
    insert_rows(
        Enrollment,
        _ENROLLMENT_COLUMNS,
        (
            (plan.pk, patient_id, encounter_id, anchor, EnrollmentStatus.ACTIVE.value, now, "")
            for encounter_id, patient_id, anchor, _usable, _open in accepted
        ),
    )
    enrollment_ids = dict(
        Enrollment.objects.filter(
            plan_id=plan.pk, encounter_id__in=[row[0] for row in accepted]
        ).values_list("encounter_id", "pk")
    )
    distributor = EvenDistributor.for_plan(plan)
    closed_reason = _window_closed_reason()

    def task_rows() -> Iterable[tuple[Any, ...]]:
        for encounter_id, patient_id, anchor, usable, open_steps in accepted:
            assignee_id = distributor.next(open_steps) if distributor else None
            enrollment_id = enrollment_ids[encounter_id]
            for step in usable:
                target, window_start, deadline, status, reason = task_window(
                    anchor, step, today, closed_reason=closed_reason
                )
                yield (
                    enrollment_id,
                    step.pk,
                    patient_id,
                    plan.pk,
                    plan.department_id,
                    assignee_id,
                    step.channel,
                    status,
                    target,
                    window_start,
                    deadline,
                    0,
                    "",
                    now if status == states.CANCELLED else None,
                    reason,
                    now,
                    now,
                )

    insert_rows(Task, _TASK_COLUMNS, task_rows())
    return len(accepted)


def auto_enrol(*, now: dt.datetime | None = None) -> int:
    """Enrol every encounter matching an active automatic plan (F2.2); returns the number of new
    enrolments. Idempotent: a second run finds nothing new.

    An encounter is considered while its anchor (discharge / surgery / visit date) is recent
    enough that at least one step's window is still open, so a new plan does not flood the
    nurses with years of history.
    """
    now = now or timezone.now()
    today = states.local_today(now)
    created = 0
    plans = (
        Plan.objects.filter(is_active=True, auto_enrol=True)
        .exclude(trigger=Trigger.ENROLMENT)
        .order_by("pk")
    )
    for plan in plans:
        steps = list(plan.steps.order_by("order", "pk"))
        if not steps:
            continue
        reach = max(step.day_offset + step.window_after for step in steps)
        earliest = today - dt.timedelta(days=reach)
        candidates = _auto_candidates(plan, steps, earliest=earliest, today=today)
        if candidates is None:
            continue
        rows_query = candidates.values_list(  # type: ignore[misc]
            "pk",
            "patient_id",
            "anchor_at",
            "patient__birth_date",
            "patient__sms_opt_out",
            "patient__call_opt_out",
        ).order_by("pk")
        last_pk = 0
        while True:
            with transaction.atomic():
                # Serialises workers per plan; the NOT EXISTS above is evaluated under the lock.
                list(Plan.objects.select_for_update().filter(pk=plan.pk).values_list("pk"))
                rows = list(rows_query.filter(pk__gt=last_pk)[:AUTO_ENROL_BATCH])
                if not rows:
                    break
                last_pk = rows[-1][0]
                created += _enrol_rows(plan, steps, rows, today=today, now=now)
    if created:
        logger.info("auto_enrol created %s enrolments", created)
    return created


# --- ending enrolments and tasks -----------------------------------------------------------------

_FLAG_REASONS = {
    "is_deceased": lambda: _("Patient deceased"),
    "do_not_contact": lambda: _("Patient must not be contacted"),
    "call_opt_out": lambda: _("Patient opted out of calls"),
    "sms_opt_out": lambda: _("Patient opted out of SMS"),
}


def _readable_reason(reason: str) -> str:
    """Flag names passed as reasons (``"is_deceased,call_opt_out"``) become words."""
    parts = [p.strip() for p in reason.split(",")]
    if parts and all(p in _FLAG_REASONS for p in parts):
        return "; ".join(str(_FLAG_REASONS[p]()) for p in parts)
    return reason


def _close_finished_enrollments(
    enrollment_ids: Iterable[int], *, status: str, reason: str, now: dt.datetime
) -> int:
    """End the active enrolments among ``enrollment_ids`` that have no open task left."""
    ids = sorted(set(enrollment_ids))
    if not ids:
        return 0
    open_tasks = Task.objects.filter(enrollment=OuterRef("pk"), status__in=sorted(states.OPEN))
    return (
        Enrollment.objects.filter(pk__in=ids, status=EnrollmentStatus.ACTIVE)
        .exclude(Exists(open_tasks))
        .update(status=status, ended_at=now, end_reason=reason[:200])
    )


def _cancel_open(tasks: QuerySet[Task], *, reason: str, now: dt.datetime) -> tuple[int, set[int]]:
    """Cancel the open tasks of ``tasks``; returns the count and their enrolments."""
    tasks = tasks.filter(status__in=sorted(states.OPEN))
    enrollment_ids = set(tasks.values_list("enrollment_id", flat=True))
    count = tasks.update(
        status=states.CANCELLED,
        end_reason=reason[:200],
        completed_at=now,
        next_attempt_at=None,
        updated_at=now,
    )
    return count, enrollment_ids


def withdraw(
    enrollment: Enrollment,
    *,
    reason: str,
    acting_user: User | None,
    now: dt.datetime | None = None,
) -> Enrollment:
    """Take a patient off a plan: open tasks are cancelled with the reason, the enrolment ends as
    withdrawn. Done and failed tasks keep their outcome."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise FollowupError(_("Give a reason for the withdrawal."))
    with transaction.atomic():
        locked = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
        if locked.status != EnrollmentStatus.ACTIVE:
            raise FollowupError(
                _("This enrolment has already ended (%(status)s).")
                % {"status": locked.get_status_display()}
            )
        _cancel_open(Task.objects.filter(enrollment=locked), reason=reason, now=now)
        locked.status = EnrollmentStatus.WITHDRAWN
        locked.ended_at = now
        locked.end_reason = reason[:200]
        locked.save(update_fields=["status", "ended_at", "end_reason"])
    enrollment.status, enrollment.ended_at, enrollment.end_reason = (
        locked.status,
        locked.ended_at,
        locked.end_reason,
    )
    logger.info("enrolment %s withdrawn by user %s", locked.pk, getattr(acting_user, "pk", None))
    return enrollment


def stop_contact(
    patient: Patient,
    *,
    reason: str,
    acting_user: User | None = None,
    channels: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Cancel the patient's open tasks that may no longer be carried out; returns how many.

    ``channels`` None means: what the patient's flags forbid (everything when deceased or
    do-not-contact, calls when call-opted-out, SMS when SMS-opted-out), and everything when no
    flag is set (an explicit request to stop). Enrolments left without open tasks end as
    withdrawn with the reason.
    """
    now = now or timezone.now()
    reason = _readable_reason((reason or "").strip()) or _("Contact stopped")
    if channels is None:
        blocked = blocked_channels(patient)
        stop = blocked or ALL_CHANNELS
    else:
        stop = frozenset(channels)
    with transaction.atomic():
        tasks = Task.objects.filter(patient=patient)
        if stop != ALL_CHANNELS:
            tasks = tasks.filter(channel__in=sorted(stop))
        count, enrollment_ids = _cancel_open(tasks, reason=reason, now=now)
        _close_finished_enrollments(
            enrollment_ids, status=EnrollmentStatus.WITHDRAWN, reason=reason, now=now
        )
    if count:
        logger.info("stop_contact cancelled %s tasks of patient %s", count, patient.pk)
    return count


# --- outcomes ------------------------------------------------------------------------------------


def questionnaire_version(step: PlanStep) -> QuestionnaireVersion | None:
    """The current published version of the step's questionnaire, if it has one."""
    if step.questionnaire_id is None:
        return None
    return (
        QuestionnaireVersion.objects.filter(
            questionnaire_id=step.questionnaire_id, published_at__isnull=False
        )
        .order_by("-number")
        .first()
    )


def _finish(task: Task, status: str, *, now: dt.datetime, reason: str = "") -> None:
    states.check_transition(task.status, status)
    task.status = status
    task.completed_at = now
    task.next_attempt_at = None
    task.end_reason = reason[:200]


def _mark_deceased(patient: Patient, *, acting_user: User | None) -> None:
    try:
        from careloop.patients.services import set_flags
    except ImportError:  # the patients app's service is optional for this app
        Patient.objects.filter(pk=patient.pk).update(is_deceased=True, updated_at=timezone.now())
    else:
        set_flags(patient, is_deceased=True, acting_user=acting_user)
    patient.is_deceased = True


def record_outcome(
    task: Task,
    *,
    outcome: str,
    answers: dict[str, Any] | None = None,
    note: str = "",
    callback_at: dt.datetime | None = None,
    acting_user: User | None,
    now: dt.datetime | None = None,
) -> FollowUpRecord:
    """Record one contact attempt and move the task (F2.3, F2.4).

    * reached → done, with the questionnaire response saved (``surveys.services.submit_response``;
      bad answers raise ``surveys.schema.AnswerError`` and nothing is saved);
    * no answer / busy → retry after the plan's interval while attempts remain, else unreached;
    * wrong number → unreached; refused → lost, and the enrolment ends as lost;
    * deceased → the patient is flagged deceased and every open task of theirs is cancelled;
    * call back → stays open, next attempt at ``callback_at``.

    An unassigned (pool) task is taken by the person recording. Raises FollowupError when the task
    is finished or the outcome is incomplete.
    """
    from careloop.surveys.services import submit_response

    now = now or timezone.now()
    if outcome not in Outcome.values:
        raise FollowupError(_("Unknown outcome %(outcome)s.") % {"outcome": outcome})
    if outcome == Outcome.CALL_BACK:
        if callback_at is None:
            raise FollowupError(_("Give the time to call back."))
        if timezone.is_naive(callback_at):
            callback_at = timezone.make_aware(callback_at)
        if callback_at <= now:
            raise FollowupError(_("The call-back time must be in the future."))
    user = _user_or_none(acting_user)
    with transaction.atomic():
        locked = (
            Task.objects.select_for_update(of=("self",))
            .select_related("plan", "step", "patient", "enrollment")
            .get(pk=task.pk)
        )
        if locked.status not in states.OPEN:
            raise FollowupError(
                _("This task is already finished (%(status)s).")
                % {"status": locked.get_status_display()}
            )
        response = None
        version = questionnaire_version(locked.step)
        if outcome == Outcome.REACHED and version is not None:
            response = submit_response(
                version,
                patient=locked.patient,
                answers=answers or {},
                channel=RESPONSE_CHANNEL[locked.channel],
                acting_user=user,
            )
        elif answers and any(v not in (None, "", []) for v in answers.values()):
            if version is None:
                raise FollowupError(_("This step has no questionnaire to answer."))
            raise FollowupError(_("Answers are recorded only when the patient was reached."))
        record = FollowUpRecord.objects.create(
            task=locked,
            outcome=outcome,
            channel=locked.channel,
            note=note,
            callback_at=callback_at if outcome == Outcome.CALL_BACK else None,
            response=response,
            recorded_by=user,
            recorded_at=now,
        )
        if response is not None:
            # Abnormal answers raise alerts for the doctor as soon as the answers are saved (F2.5);
            # the alerts job would find them a minute later otherwise.
            from careloop.alerts import services as alert_services

            saved_response, saved_task = response, locked
            transaction.on_commit(
                lambda: alert_services.evaluate_response(saved_response, task=saved_task, now=now)
            )
        locked.attempts += 1
        locked.outcome = outcome
        if locked.assignee_id is None and user is not None:
            locked.assignee = user
        _apply_outcome(locked, outcome, note=note, callback_at=callback_at, now=now)
        locked.save(
            update_fields=[
                "status",
                "attempts",
                "outcome",
                "assignee",
                "next_attempt_at",
                "completed_at",
                "end_reason",
                "updated_at",
            ]
        )
        _after_outcome(locked, outcome, acting_user=user, now=now)
    task.refresh_from_db()
    return record


def _apply_outcome(
    task: Task, outcome: str, *, note: str, callback_at: dt.datetime | None, now: dt.datetime
) -> None:
    if outcome == Outcome.REACHED:
        _finish(task, states.DONE, now=now)
    elif outcome == Outcome.WRONG_NUMBER:
        _finish(task, states.UNREACHED, now=now, reason=note or _("Wrong number"))
    elif outcome == Outcome.REFUSED:
        _finish(task, states.LOST, now=now, reason=note or _("Patient refused follow-up"))
    elif outcome == Outcome.DECEASED:
        _finish(task, states.CANCELLED, now=now, reason=_("Patient deceased"))
    elif outcome == Outcome.CALL_BACK:
        task.next_attempt_at = callback_at
    else:  # no answer, busy
        # Attempts are counted per channel: the automated calls made before a step was handed to
        # a nurse (``hand_to_nurse``) do not use up the nurse's attempts.
        failed = task.records.filter(
            outcome__in=sorted(states.RETRY_OUTCOMES), channel=task.channel
        ).count()
        if failed >= task.plan.max_attempts:
            automated = (
                task.records.filter(channel=Channel.IVR).exclude(outcome=Outcome.REACHED).count()
                if task.channel != Channel.IVR
                else 0
            )
            if automated:
                reason = _(
                    "Not reached: %(auto)s automated calls and %(n)s nurse calls unanswered"
                ) % {"auto": automated, "n": failed}
            else:
                reason = _("Not reached after %(n)s attempts") % {"n": failed}
            _finish(task, states.UNREACHED, now=now, reason=reason)
        else:
            task.next_attempt_at = now + dt.timedelta(hours=task.plan.retry_interval_hours)


def _after_outcome(task: Task, outcome: str, *, acting_user: User | None, now: dt.datetime) -> None:
    """Consequences beyond the task: the enrolment, the patient."""
    if outcome == Outcome.DECEASED:
        stop_contact(task.patient, reason=_("Patient deceased"), channels=ALL_CHANNELS, now=now)
        _mark_deceased(task.patient, acting_user=acting_user)
        _close_finished_enrollments(
            [task.enrollment_id],
            status=EnrollmentStatus.WITHDRAWN,
            reason=_("Patient deceased"),
            now=now,
        )
    elif outcome == Outcome.REFUSED:
        reason = task.end_reason
        _cancel_open(Task.objects.filter(enrollment_id=task.enrollment_id), reason=reason, now=now)
        _close_finished_enrollments(
            [task.enrollment_id], status=EnrollmentStatus.LOST, reason=reason, now=now
        )
    elif task.status in states.FINAL:
        _close_finished_enrollments(
            [task.enrollment_id], status=EnrollmentStatus.COMPLETED, reason="", now=now
        )


# --- the automated-call ladder (issue 4 item 5; see states.py) ----------------------------------


def record_automated_attempt(
    task: Task, *, outcome: str, note: str = "", now: dt.datetime | None = None
) -> FollowUpRecord:
    """Record an automated call on an open step (channel "automated call") that did not finish
    it: not answered, busy, wrong number, the patient asked for a nurse or to stop automated
    calls. The step stays open and its state, attempts and retries are left alone: the dialler
    keeps its own count (``ContactPolicy.automated_attempts``) and ``hand_to_nurse`` moves the
    step on. Finishing answers go through ``record_outcome`` like a nurse's."""
    now = now or timezone.now()
    if outcome not in Outcome.values:
        raise FollowupError(_("Unknown outcome %(outcome)s.") % {"outcome": outcome})
    with transaction.atomic():
        locked = Task.objects.select_for_update(of=("self",)).get(pk=task.pk)
        if locked.status not in states.OPEN:
            raise FollowupError(
                _("This task is already finished (%(status)s).")
                % {"status": locked.get_status_display()}
            )
        record = FollowUpRecord.objects.create(
            task=locked,
            outcome=outcome,
            channel=Channel.IVR,
            note=note,
            recorded_by=None,
            recorded_at=now,
        )
        locked.outcome = outcome
        locked.save(update_fields=["outcome", "updated_at"])
    task.refresh_from_db()
    return record


def hand_to_nurse(
    task: Task,
    *,
    reason: str,
    assignee: User | None = None,
    now: dt.datetime | None = None,
) -> Task:
    """An automated step goes to a nurse: its channel becomes "nurse phone call", due now.

    The nurse is ``assignee`` when given (she took the call), else the step's assignee, else the
    plan's assignment (even distribution over the team, or the pool). She is notified with the
    reason. The nurse has the plan's full attempts (counted per channel). A step not on the
    automated channel, or finished, is left alone."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Task.objects.select_for_update(of=("self",)).select_related("plan").get(pk=task.pk)
        if locked.status not in states.OPEN or locked.channel != Channel.IVR:
            return locked
        if assignee is not None:
            locked.assignee = assignee
        elif locked.assignee_id is None:
            distributor = EvenDistributor.for_plan(locked.plan)
            locked.assignee_id = distributor.next(1) if distributor else None
        locked.channel = Channel.PHONE
        locked.next_attempt_at = now
        locked.save(update_fields=["channel", "assignee", "next_attempt_at", "updated_at"])
        if locked.assignee_id is not None:
            with translation.override(settings.LANGUAGE_CODE):
                template = _("Task #%(id)s (%(plan)s) is yours to call: %(reason)s")
                text = template % {"id": locked.pk, "plan": locked.plan.name, "reason": reason}
            Notification.objects.create(
                user_id=locked.assignee_id,
                kind=NotificationKind.ASSIGNED,
                task=locked,
                created_at=now,
                text=text[:300],
            )
    logger.info("task %s handed from the automated dialler to a nurse", locked.pk)
    task.refresh_from_db()
    return task


# --- assignment and claims -----------------------------------------------------------------------


def claim(task: Task, *, acting_user: User, now: dt.datetime | None = None) -> bool:
    """Take an unassigned open task from the pool. A conditional UPDATE: of two nurses claiming
    at once exactly one gets it; returns whether this one did."""
    now = now or timezone.now()
    claimed = Task.objects.filter(
        pk=task.pk, assignee__isnull=True, status__in=sorted(states.OPEN)
    ).update(assignee=acting_user, updated_at=now)
    if claimed:
        task.assignee = acting_user
    return bool(claimed)


def can_work_in(user: User, department_id: int) -> bool:
    """Whether ``user`` may be given tasks of this department (they must be able to open them)."""
    if not user.is_active:
        return False
    if user.all_departments or user.is_superuser:
        return True
    return user.departments.filter(pk=department_id).exists()


def assign(
    task: Task,
    *,
    assignee: User | None,
    acting_user: User,
    now: dt.datetime | None = None,
) -> Task:
    """Reassign an open task (supervisors), or put it back in the pool with ``assignee=None``.
    The new assignee is notified."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Task.objects.select_for_update(of=("self",)).select_related("plan").get(pk=task.pk)
        if locked.status not in states.OPEN:
            raise FollowupError(_("Only open tasks can be reassigned."))
        if assignee is not None and not can_work_in(assignee, locked.department_id):
            raise FollowupError(
                _("%(user)s does not work in the task's department.") % {"user": assignee}
            )
        locked.assignee = assignee
        locked.save(update_fields=["assignee", "updated_at"])
        if assignee is not None and assignee.pk != acting_user.pk:
            Notification.objects.create(
                user=assignee,
                kind=NotificationKind.ASSIGNED,
                task=locked,
                created_at=now,
                text=_notification_text(
                    _notification_template(NotificationKind.ASSIGNED),
                    locked.pk,
                    locked.plan.name,
                    locked.deadline,
                ),
            )
    task.assignee = assignee
    return task


# --- time: states and overdue warnings -----------------------------------------------------------


def _notification_template(kind: str) -> str:
    # Stored in the hospital's language: the text outlives the request that made it.
    with translation.override(settings.LANGUAGE_CODE):
        if kind == NotificationKind.OVERDUE:
            return _("Task #%(id)s (%(plan)s) is overdue: the deadline was %(deadline)s.")
        return _("Task #%(id)s (%(plan)s) was assigned to you; deadline %(deadline)s.")


def _notification_text(template: str, task_id: int, plan_name: str, deadline: dt.date) -> str:
    return (template % {"id": task_id, "plan": plan_name, "deadline": deadline.isoformat()})[:300]


def _department_supervisors(department_ids: Iterable[int]) -> dict[int, list[int]]:
    through = User.departments.through
    rows = through.objects.filter(
        department_id__in=sorted(set(department_ids)),
        user__role=Role.SUPERVISOR,
        user__is_active=True,
    ).values_list("department_id", "user_id")
    supervisors: dict[int, list[int]] = {}
    for department_id, user_id in rows:
        supervisors.setdefault(department_id, []).append(user_id)
    return supervisors


def _send_overdue_warnings(now: dt.datetime) -> int:
    """Warn the assignee and the team supervisor (else the department's supervisors) of each
    newly overdue task, once: ``overdue_notified_at`` is set in the same transaction."""
    warned = 0
    template = _notification_template(NotificationKind.OVERDUE)
    while True:
        with transaction.atomic():
            rows = list(
                Task.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(status=states.OVERDUE, overdue_notified_at__isnull=True)
                .order_by("pk")
                .values_list(
                    "pk",
                    "assignee_id",
                    "department_id",
                    "plan__team__supervisor_id",
                    "plan__name",
                    "deadline",
                )[:OVERDUE_WARNING_BATCH]
            )
            if not rows:
                return warned
            fallback = _department_supervisors(r[2] for r in rows if r[3] is None)
            notices: list[tuple[Any, ...]] = []
            for pk, assignee_id, department_id, supervisor_id, plan_name, deadline in rows:
                recipients = {assignee_id} if assignee_id else set()
                if supervisor_id:
                    recipients.add(supervisor_id)
                else:
                    recipients.update(fallback.get(department_id, []))
                text = _notification_text(template, pk, plan_name, deadline)
                notices.extend(
                    (user_id, NotificationKind.OVERDUE.value, text, pk, now)
                    for user_id in sorted(recipients)
                )
            insert_rows(Notification, ("user_id", "kind", "text", "task_id", "created_at"), notices)
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 500):
                Task.objects.filter(
                    pk__in=ids[start : start + 500], overdue_notified_at__isnull=True
                ).update(overdue_notified_at=now)
            warned += len(rows)


def refresh_states(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Move stored task states with the calendar (pending → due → overdue) in set-based UPDATEs,
    then send each newly overdue task's warning once. Returns counts per change."""
    now = now or timezone.now()
    today = states.local_today(now)
    conditions = states.time_state_conditions(today)
    moved: dict[str, int] = {}
    open_to = {
        target: sorted(s for s in states.OPEN if states.can_transition(s, target))
        for target in (states.DUE, states.OVERDUE)
    }
    with transaction.atomic():
        # Overdue first: afterwards every pending task whose window has opened is due, so the
        # second UPDATE needs only the window-start half of the DUE condition, which lets the
        # (status, window_start) index find the few rows to move.
        moved[states.OVERDUE] = (
            Task.objects.filter(status__in=open_to[states.OVERDUE])
            .filter(conditions[states.OVERDUE])
            .update(status=states.OVERDUE, updated_at=now)
        )
        moved[states.DUE] = Task.objects.filter(
            status__in=open_to[states.DUE], window_start__lte=today
        ).update(status=states.DUE, updated_at=now)
    moved["warned"] = _send_overdue_warnings(now)
    return moved


def mark_notifications_read(
    user: User, *, ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> int:
    """Mark the user's unread notifications (all, or those with ``ids``) read."""
    notifications = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        notifications = notifications.filter(pk__in=list(ids))
    return notifications.update(read_at=now or timezone.now())
