"""Reads of patient data and the ``visible_to`` gate: a user sees the patients treated in their departments."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids
from careloop.patients.models import Encounter, Patient


def visible_to(user: User) -> QuerySet[Patient]:
    ids = department_ids(user)
    patients = Patient.objects.all()
    if ids is None:
        return patients
    return patients.filter(
        Exists(Encounter.objects.filter(patient=OuterRef("pk"), department_id__in=ids))
    )


def get_visible_patient(user: User, pk: int) -> Patient:
    """The patient, or 404 when it does not exist *or* belongs to another department."""
    try:
        return visible_to(user).get(pk=pk)
    except (Patient.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such patient") from exc
