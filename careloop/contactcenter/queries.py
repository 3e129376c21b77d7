"""Reads of the contact center and its department gate (a call is visible with its patient)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.accounts.queries import department_filter
from careloop.contactcenter.choices import CallState, Direction, PhoneKind, RatingStatus
from careloop.contactcenter.models import AgentPhone, Call, Recording
from careloop.followup.choices import Channel as FollowUpChannel
from careloop.followup.choices import Outcome
from careloop.followup.models import FollowUpRecord, Task
from careloop.patients.models import Encounter, Patient, PatientContact
from careloop.patients.queries import TimelineEntry, visible_to


def calls_visible_to(user: User) -> QuerySet[Call]:
    """Calls with a patient the user may see, and the user's own calls."""
    return Call.objects.filter(Q(patient__in=visible_to(user)) | Q(agent=user))


def get_visible_call(user: User, pk: int) -> Call:
    try:
        return calls_visible_to(user).get(pk=pk)
    except Call.DoesNotExist as exc:
        raise Http404("No such call") from exc


def get_visible_recording(user: User, pk: int) -> Recording:
    """A recording, 404 unless its patient is in one of the user's departments."""
    try:
        return Recording.objects.select_related("call__patient").get(
            pk=pk, call__patient__in=visible_to(user)
        )
    except Recording.DoesNotExist as exc:
        raise Http404("No such recording") from exc


def calls_of_task(task: Task) -> QuerySet[Call]:
    return (
        Call.objects.filter(task=task)
        .prefetch_related("recordings__followup_record")
        .order_by("-created_at")
    )


def timeline_entries(patient: Patient) -> list[TimelineEntry]:
    """The patient's calls for ``patients.queries.timeline`` (to be merged there)."""
    entries: list[TimelineEntry] = []
    for call in (
        Call.objects.filter(patient=patient).select_related("agent").prefetch_related("recordings")
    ):
        if call.direction == Direction.OUTBOUND:
            title = _("Call to the patient by %(who)s") % {"who": call.agent or "-"}
        else:
            title = _("Call from the patient, answered by %(who)s") % {"who": call.agent or "-"}
        if call.answered_at and call.ended_at:
            detail = _("Talked %(seconds)d s") % {
                "seconds": int((call.ended_at - call.answered_at).total_seconds())
            }
        else:
            detail = _("Not answered (%(cause)s)") % {
                "cause": call.cause or call.get_state_display()
            }
        if call.rating is not None:
            detail += " · " + _("Patient's rating: %(rating)s/5") % {"rating": call.rating}
        recording = next(iter(call.recordings.all()), None)
        url = f"/cc/recordings/{recording.pk}/" if recording is not None else ""
        entries.append(TimelineEntry(call.created_at, "call", title, detail, url))
    return entries


@dataclass(frozen=True)
class CallbackMatch:
    """Whom an inbound call from a number should ring, and for which patient / task."""

    phone: AgentPhone | None
    patient: Patient | None
    task: Task | None


def callback_days() -> int:
    return int(getattr(settings, "CC_CALLBACK_DAYS", 7))


def patients_with_number(number: str) -> list[Patient]:
    if not number:
        return []
    contact_ids = PatientContact.objects.filter(phone=number).values("patient_id")
    return list(Patient.objects.filter(Q(phone=number) | Q(pk__in=contact_ids)).order_by("pk"))


def _available(phones: QuerySet[AgentPhone]) -> AgentPhone | None:
    """The first phone that can ring: registered (or fixed) and its user not on another call."""
    now = timezone.now()
    busy = Call.objects.exclude(state=CallState.ENDED).filter(
        created_at__gte=now - dt.timedelta(hours=4)
    )
    for phone in phones.exclude(user__in=busy.values("agent")):
        if phone.kind == PhoneKind.FIXED or phone.is_registered(now):
            return phone
    return None


def callback_match(number: str, *, now: dt.datetime | None = None) -> CallbackMatch:
    """F4.8: the nurse whose follow-up call to this number was missed in the last N days (a call
    made here, else a "no answer"/"busy" outcome she recorded), else her team, else any available
    agent (the caller is then unknown or has no recent missed call)."""
    now = now or timezone.now()
    patients = patients_with_number(number)
    if patients:
        missed = (
            Call.objects.filter(
                direction=Direction.OUTBOUND,
                patient__in=patients,
                answered_at__isnull=True,
                agent_answered_at__isnull=False,
                created_at__gte=now - dt.timedelta(days=callback_days()),
            )
            .select_related("patient", "task__plan__team")
            .order_by("-created_at")
            .first()
        )
        if missed is not None:
            phone = _available(AgentPhone.objects.filter(user=missed.agent))
            team = missed.task.plan.team if missed.task is not None else None
            if phone is None and team is not None:
                phone = _available(
                    AgentPhone.objects.filter(
                        user__in=team.members.filter(is_active=True)
                    ).order_by("pk")
                )
            if phone is not None:
                return CallbackMatch(phone, missed.patient, missed.task)
        else:
            # A nurse who dialled from another phone and recorded "no answer" / "busy"
            record = (
                FollowUpRecord.objects.filter(
                    task__patient__in=patients,
                    outcome__in=[Outcome.NO_ANSWER, Outcome.BUSY],
                    channel=FollowUpChannel.PHONE,
                    recorded_by__isnull=False,
                    recorded_at__gte=now - dt.timedelta(days=callback_days()),
                )
                .select_related("task__patient")
                .order_by("-recorded_at")
                .first()
            )
            if record is not None:
                phone = _available(AgentPhone.objects.filter(user_id=record.recorded_by_id))
                if phone is not None:
                    return CallbackMatch(phone, record.task.patient, record.task)
        patient = patients[0]
    else:
        patient = None
    return CallbackMatch(
        _available(AgentPhone.objects.filter(user__is_active=True).order_by("pk")), patient, None
    )


# --- post-call satisfaction report (F3.3) ---------------------------------------------------------

RATING_REPORT_ROLES = frozenset({Role.SUPERVISOR, Role.LEADER, Role.ADMIN})
_PUT_THROUGH = [RatingStatus.OFFERED, RatingStatus.RATED, RatingStatus.UNRATED]


def can_view_ratings(user: User) -> bool:
    """Supervisors, leaders and administrators read the satisfaction report."""
    return bool(user.is_authenticated and (user.is_superuser or user.role in RATING_REPORT_ROLES))


def call_department() -> Coalesce:
    """The department a call counts for: its task's, else the patient's latest encounter's,
    else the department that registered the patient."""
    latest = (
        Encounter.objects.filter(patient=OuterRef("patient_id"))
        .order_by("-started_at", "-pk")
        .values("department_id")[:1]
    )
    return Coalesce(
        "task__department_id",
        Subquery(latest),
        "patient__registered_department_id",
        output_field=IntegerField(),
    )


def rated_calls(
    user: User,
    *,
    date_from: dt.date,
    date_to: dt.date,
    department: Department | None = None,
) -> QuerySet[Call]:
    """Nurses' calls started between the two dates (inclusive, hospital time zone) in the
    user's departments, with ``cc_department`` annotated. Automated calls nobody took over
    (no agent) are not the nurses' service and are left out."""
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    calls = (
        Call.objects.annotate(cc_department=call_department())
        .filter(created_at__gte=start, created_at__lt=end, agent__isnull=False)
        .filter(department_filter(user, "cc_department"))
    )
    if department is not None:
        calls = calls.filter(cc_department=department.pk)
    return calls


def _rating_counts() -> dict[str, Any]:
    counts: dict[str, Any] = {
        "conversations": Count(
            "pk", filter=Q(answered_at__isnull=False, agent_answered_at__isnull=False)
        ),
        "put_through": Count("pk", filter=Q(rating_status__in=_PUT_THROUGH)),
        "rated": Count("pk", filter=Q(rating__isnull=False)),
        "average": Avg("rating"),
    }
    for value in range(1, 6):
        counts[f"r{value}"] = Count("pk", filter=Q(rating=value))
    return counts


@dataclass(frozen=True)
class RatingRow:
    """Satisfaction figures of one group of calls (everyone, a department, a nurse)."""

    label: str
    conversations: int
    put_through: int
    rated: int
    average: float | None
    distribution: tuple[int, int, int, int, int]  # how many pressed 1, 2, 3, 4, 5

    @property
    def share_rated(self) -> float | None:
        """Rated calls among those put through to the rating."""
        return self.rated / self.put_through if self.put_through else None

    @classmethod
    def of(cls, label: str, row: dict[str, Any]) -> RatingRow:
        average = row["average"]
        return cls(
            label=label,
            conversations=row["conversations"],
            put_through=row["put_through"],
            rated=row["rated"],
            average=round(float(average), 2) if average is not None else None,
            distribution=(row["r1"], row["r2"], row["r3"], row["r4"], row["r5"]),
        )


@dataclass(frozen=True)
class RatingReport:
    total: RatingRow
    departments: list[RatingRow]
    nurses: list[RatingRow]


def rating_report(calls: QuerySet[Call]) -> RatingReport:
    """Average, count and share rated, distribution 1-5: overall, per department, per nurse.
    Groups without a conversation are left out."""
    counts = _rating_counts()
    unordered: Any = calls.order_by()  # annotated with cc_department (rated_calls)
    total = RatingRow.of(str(_("All calls")), unordered.aggregate(**counts))
    names = dict(Department.objects.values_list("pk", "name"))
    departments = [
        RatingRow.of(names.get(row["cc_department"], "—"), row)
        for row in unordered.values("cc_department").annotate(**counts)
        if row["conversations"]
    ]
    departments.sort(key=lambda r: r.label)
    agents = {
        user.pk: str(user) for user in User.objects.filter(pk__in=unordered.values("agent_id"))
    }
    nurses = [
        RatingRow.of(agents.get(row["agent_id"], "—"), row)
        for row in unordered.values("agent_id").annotate(**counts)
        if row["conversations"]
    ]
    nurses.sort(key=lambda r: r.label)
    return RatingReport(total, departments, nurses)
