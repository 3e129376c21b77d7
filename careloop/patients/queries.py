"""Reads of patient data and the ``visible_to`` gate: a user sees the patients treated in their departments.

Also the combined search (F1.6), the list annotations and the patient timeline (F1.5).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids
from careloop.core.formats import normalize_phone, to_halfwidth
from careloop.patients.choices import EncounterKind
from careloop.patients.models import Encounter, Patient, PatientContact


def visible_to(user: User) -> QuerySet[Patient]:
    """Patients with an encounter in one of the user's departments, or registered by one."""
    ids = department_ids(user)
    patients = Patient.objects.all()
    if ids is None:
        return patients
    return patients.filter(
        Exists(Encounter.objects.filter(patient=OuterRef("pk"), department_id__in=ids))
        | Q(registered_department_id__in=ids)
    )


def get_visible_patient(user: User, pk: int) -> Patient:
    """The patient, or 404 when it does not exist *or* belongs to another department."""
    try:
        return visible_to(user).get(pk=pk)
    except (Patient.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such patient") from exc


# --- search (F1.6) -------------------------------------------------------------------------------

_LETTERS = re.compile(r"^[a-z]+$")
_DIGITS = re.compile(r"^\d+$")
_DIAGNOSIS_CODE = re.compile(r"^[A-Z]\d")


def _term_filter(term: str) -> Q:
    """Everything one word of the search box may mean, OR-ed together."""
    upper = term.upper()
    encounters = Encounter.objects.filter(patient=OuterRef("pk"))
    q: Q = (
        Q(name__icontains=term)
        | Q(card_no__iexact=term)
        | Q(record_no__iexact=term)
        | Q(id_number=upper)
        | Q(Exists(encounters.filter(diagnosis_name__icontains=term)))
    )
    if _LETTERS.match(term.lower()):
        q |= Q(name_initials__startswith=term.lower())
    if _DIAGNOSIS_CODE.match(upper):
        q |= Q(Exists(encounters.filter(diagnosis_code__istartswith=upper)))
    digits = term.replace("-", "")
    if _DIGITS.match(digits) and len(digits) >= 4:
        contacts = PatientContact.objects.filter(patient=OuterRef("pk"))
        if len(digits) == 4:
            # The last four digits are what a caller reads out or what a masked number shows.
            q |= Q(phone__endswith=digits) | Q(Exists(contacts.filter(phone__endswith=digits)))
        else:
            q |= Q(phone__contains=term) | Q(Exists(contacts.filter(phone__contains=term)))
            try:
                # A landline is stored as 010-12345678 but usually typed without the dash.
                normalized = normalize_phone(term)
            except ValueError:
                pass
            else:
                q |= Q(phone=normalized) | Q(Exists(contacts.filter(phone=normalized)))
        if len(digits) >= 6:
            q |= Q(id_number__startswith=upper) | Q(id_number__endswith=upper)
    return q


def search(patients: QuerySet[Patient], text: str) -> QuerySet[Patient]:
    """Combined search in one box: every word must match one of name, pinyin initials, phone
    (also the last four digits, also family phones), card no., record no., ID number,
    diagnosis code or name. Full-width input is accepted.
    """
    for term in to_halfwidth(text).split():
        patients = patients.filter(_term_filter(term))
    return patients


def day_start(day: dt.date) -> dt.datetime:
    """Local (Asia/Shanghai) midnight of ``day`` as an aware datetime."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


FLAG_FILTERS: dict[str, Q] = {
    "deceased": Q(is_deceased=True),
    "do_not_contact": Q(do_not_contact=True),
    "sms_opt_out": Q(sms_opt_out=True),
    "call_opt_out": Q(call_opt_out=True),
    "vip": Q(vip_level__gt=0),
}


def filter_patients(patients: QuerySet[Patient], data: dict[str, Any]) -> QuerySet[Patient]:
    """Apply the cleaned data of ``patients.filters.PatientFilterForm``.

    Department, encounter kind and discharge dates must hold for the *same* encounter, so
    "inpatients of cardiology discharged in March" means what it says.
    """
    if data.get("q"):
        patients = search(patients, data["q"])
    encounter_q = Q()
    department = data.get("department")
    if department:
        encounter_q &= Q(department=department)
    if data.get("kind"):
        encounter_q &= Q(kind=data["kind"])
    if data.get("discharged_from"):
        encounter_q &= Q(discharged_at__gte=day_start(data["discharged_from"]))
    if data.get("discharged_to"):
        encounter_q &= Q(discharged_at__lt=day_start(data["discharged_to"] + dt.timedelta(days=1)))
    if encounter_q:
        in_encounter = Exists(Encounter.objects.filter(encounter_q, patient=OuterRef("pk")))
        only_department = (
            department
            and not data.get("kind")
            and not data.get("discharged_from")
            and not data.get("discharged_to")
        )
        if only_department:
            patients = patients.filter(in_encounter | Q(registered_department=department))
        else:
            patients = patients.filter(in_encounter)
    for flag in data.get("flags") or []:
        patients = patients.filter(FLAG_FILTERS[flag])
    return patients


def with_last_encounter(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate the latest encounter's department, kind, discharge and diagnosis (one query)."""
    latest = Encounter.objects.filter(patient=OuterRef("pk")).order_by("-started_at", "-id")
    return patients.annotate(
        last_department=Subquery(latest.values("department__name")[:1]),
        last_kind=Subquery(latest.values("kind")[:1]),
        last_discharged_at=Subquery(latest.values("discharged_at")[:1]),
        last_diagnosis=Subquery(latest.values("diagnosis_name")[:1]),
    )


# --- timeline (F1.5) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a patient, for the patient page."""

    when: dt.datetime
    kind: str  # admission, discharge, visit, surgery, enrolment, enrolment_end, followup, response
    title: str
    detail: str = ""
    url: str = ""


def response_url(response_id: int) -> str:
    return f"/surveys/responses/{response_id}/"


def _encounter_entries(patient: Patient) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    encounters = (
        Encounter.objects.filter(patient=patient)
        .select_related("department")
        .prefetch_related("surgeries")
    )
    for enc in encounters:
        department = enc.department.name
        diagnosis = " ".join(p for p in (enc.diagnosis_code, enc.diagnosis_name) if p)
        if enc.kind == EncounterKind.INPATIENT:
            entries.append(
                TimelineEntry(
                    enc.started_at,
                    "admission",
                    _("Admitted to %(department)s") % {"department": department},
                    " ".join(p for p in (enc.ward, enc.bed) if p),
                )
            )
            if enc.discharged_at:
                entries.append(
                    TimelineEntry(
                        enc.discharged_at,
                        "discharge",
                        _("Discharged from %(department)s") % {"department": department},
                        diagnosis,
                    )
                )
        else:
            entries.append(
                TimelineEntry(
                    enc.started_at,
                    "visit",
                    _("%(kind)s, %(department)s")
                    % {"kind": enc.get_kind_display(), "department": department},
                    diagnosis,
                )
            )
        for surgery in enc.surgeries.all():
            entries.append(
                TimelineEntry(
                    surgery.performed_at,
                    "surgery",
                    _("Surgery: %(name)s") % {"name": surgery.name},
                    surgery.surgeon_name,
                )
            )
    return entries


def _followup_entries(patient: Patient) -> list[TimelineEntry]:
    # The follow-up app is read through its models only (see docs/interfaces.md).
    from careloop.followup.models import Enrollment, FollowUpRecord
    from careloop.surveys.models import Response

    entries: list[TimelineEntry] = []
    for enrol in Enrollment.objects.filter(patient=patient).select_related("plan"):
        entries.append(
            TimelineEntry(
                enrol.enrolled_at,
                "enrolment",
                _("Enrolled in follow-up plan %(plan)s") % {"plan": enrol.plan.name},
                _("Anchor date %(date)s") % {"date": enrol.anchor_date.isoformat()},
            )
        )
        if enrol.ended_at:
            entries.append(
                TimelineEntry(
                    enrol.ended_at,
                    "enrolment_end",
                    _("Follow-up plan %(plan)s ended: %(status)s")
                    % {"plan": enrol.plan.name, "status": enrol.get_status_display()},
                    enrol.end_reason,
                )
            )
    records = FollowUpRecord.objects.filter(task__patient=patient).select_related(
        "task__step", "task__plan", "recorded_by"
    )
    linked_responses: set[int] = set()
    for record in records:
        by = str(record.recorded_by) if record.recorded_by else _("automatic")
        detail = _("%(channel)s by %(who)s") % {"channel": record.get_channel_display(), "who": by}
        if record.note:
            detail = f"{detail} · {record.note}"
        if record.response_id:
            linked_responses.add(record.response_id)
        entries.append(
            TimelineEntry(
                record.recorded_at,
                "followup",
                _("Follow-up %(step)s: %(outcome)s")
                % {"step": record.task.step.title, "outcome": record.get_outcome_display()},
                detail,
                response_url(record.response_id) if record.response_id else "",
            )
        )
    responses = (
        Response.objects.filter(patient=patient)
        .exclude(pk__in=linked_responses)
        .select_related("version__questionnaire")
    )
    for response in responses:
        entries.append(
            TimelineEntry(
                response.submitted_at,
                "response",
                _("Questionnaire answered: %(title)s")
                % {"title": response.version.questionnaire.title},
                response.get_channel_display(),
                response_url(response.pk),
            )
        )
    return entries


def timeline(patient: Patient, user: User | None = None) -> list[TimelineEntry]:
    """Everything known about the patient, newest first: encounters (admission, discharge,
    visits), surgeries, follow-up enrolments, follow-up contacts and questionnaire answers,
    calls with their recordings, abnormal-answer alerts and the advice given.

    With ``user``, alerts are limited to that user's departments.
    """
    # The apps above patients contribute their own entries; imported here to keep the
    # dependency pointing one way at import time.
    from careloop.alerts.queries import timeline_entries as alert_entries
    from careloop.contactcenter.queries import timeline_entries as call_entries

    entries = (
        _encounter_entries(patient)
        + _followup_entries(patient)
        + call_entries(patient)
        + alert_entries(patient, user)
    )
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries
