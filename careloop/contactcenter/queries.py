"""Reads of the contact center and its department gate (a call is visible with its patient)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.models import User
from careloop.contactcenter.choices import CallState, Direction, PhoneKind
from careloop.contactcenter.models import AgentPhone, Call, Recording
from careloop.followup.choices import Channel as FollowUpChannel
from careloop.followup.choices import Outcome
from careloop.followup.models import FollowUpRecord, Task
from careloop.patients.models import Patient, PatientContact
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
    return Call.objects.filter(task=task).prefetch_related("recordings").order_by("-created_at")


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
