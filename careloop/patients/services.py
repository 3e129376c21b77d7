"""Every change to patient data (F1.1, F1.7), audited (F7.6).

Views and the importer call these instead of saving models themselves, so the pinyin initials,
the number formats, the audit log and the follow-up stop rules are never forgotten.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from careloop.accounts.models import User
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.core.formats import normalize_id_number, normalize_phone, pinyin_initials
from careloop.patients.choices import Relation
from careloop.patients.models import Patient, PatientContact, PhoneBlock

logger = logging.getLogger(__name__)

FLAG_FIELDS = ("is_deceased", "deceased_on", "do_not_contact", "sms_opt_out", "call_opt_out")
# Flags that cancel open follow-up tasks; which channels each stops is the follow-up app's rule
# (everything for deceased / do-not-contact, calls for call opt-out, SMS for SMS opt-out).
_STOPPING_FLAGS = ("is_deceased", "do_not_contact", "call_opt_out", "sms_opt_out")


def save_patient(
    patient: Patient,
    *,
    acting_user: User | None,
    changed_fields: list[str] | None = None,
    request: HttpRequest | None = None,
) -> Patient:
    """Create or update a patient's master data.

    Normalises phone and ID number (raises ValueError with the reason when invalid), keeps
    ``name_initials`` in step with the name and turns empty card/record numbers into NULL so
    their unique constraints allow many blanks.
    """
    created = patient.pk is None
    patient.name = patient.name.strip()
    patient.name_initials = pinyin_initials(patient.name)
    if patient.phone:
        patient.phone = normalize_phone(patient.phone)
    if patient.id_number:
        patient.id_number = normalize_id_number(patient.id_number)
    patient.card_no = (patient.card_no or "").strip() or None
    patient.record_no = (patient.record_no or "").strip() or None
    with transaction.atomic():
        patient.save()
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=acting_user,
            patient=patient,
            detail={"created": created, "fields": sorted(changed_fields or [])},
            request=request,
        )
    return patient


@dataclass(frozen=True)
class FlagChange:
    """What :func:`set_flags` did: the fields changed and how many open tasks were cancelled."""

    patient: Patient
    changed: list[str]
    cancelled_tasks: int


def _stop_contact(patient: Patient, *, reason: str, acting_user: User | None) -> int:
    # The follow-up app owns its tasks; it may not be installed yet in every build.
    try:
        from careloop.followup.services import stop_contact
    except ImportError:
        logger.warning("followup.services.stop_contact missing; tasks of %s kept", patient.pk)
        return 0
    return int(stop_contact(patient, reason=reason, acting_user=acting_user))


def set_flags(
    patient: Patient,
    *,
    is_deceased: bool | None = None,
    deceased_on: dt.date | None = None,
    do_not_contact: bool | None = None,
    sms_opt_out: bool | None = None,
    call_opt_out: bool | None = None,
    acting_user: User | None,
    request: HttpRequest | None = None,
) -> FlagChange:
    """Change the deceased / do-not-contact / opt-out flags (``None`` leaves a flag alone).

    A patient who becomes deceased, do-not-contact or opted out has the open follow-up tasks
    they may no longer receive cancelled in the same transaction, through
    ``followup.services.stop_contact`` (F2.3: tasks vanish for such patients).
    """
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        before = {f: getattr(patient, f) for f in FLAG_FIELDS}
        for field, value in (
            ("is_deceased", is_deceased),
            ("do_not_contact", do_not_contact),
            ("sms_opt_out", sms_opt_out),
            ("call_opt_out", call_opt_out),
        ):
            if value is not None:
                setattr(patient, field, value)
        if not patient.is_deceased:
            patient.deceased_on = None
        elif deceased_on is not None:
            patient.deceased_on = deceased_on
        changed = [f for f in FLAG_FIELDS if getattr(patient, f) != before[f]]
        if not changed:
            return FlagChange(patient, [], 0)
        patient.save(update_fields=[*changed, "updated_at"])
        newly_set = [f for f in _STOPPING_FLAGS if getattr(patient, f) and not before[f]]
        cancelled = 0
        if newly_set:
            cancelled = _stop_contact(patient, reason=",".join(newly_set), acting_user=acting_user)
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=acting_user,
            patient=patient,
            detail={"fields": changed, "cancelled_tasks": cancelled},
            request=request,
        )
    return FlagChange(patient, changed, cancelled)


def add_contact(
    patient: Patient,
    *,
    phone: str,
    relation: str = Relation.OTHER,
    name: str = "",
    is_primary: bool = False,
    acting_user: User | None,
    request: HttpRequest | None = None,
) -> PatientContact:
    """Add a family or own phone number. Raises ValueError for a bad or duplicate number."""
    phone = normalize_phone(phone)
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        if patient.contacts.filter(phone=phone).exists():
            raise ValueError("this phone number is already a contact of the patient")
        if is_primary:
            patient.contacts.filter(is_primary=True).update(is_primary=False)
        contact = PatientContact.objects.create(
            patient=patient,
            phone=phone,
            relation=relation,
            name=name.strip(),
            is_primary=is_primary,
        )
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=acting_user,
            patient=patient,
            obj=contact,
            detail={"contact": "added"},
            request=request,
        )
    return contact


def remove_contact(
    contact: PatientContact, *, acting_user: User | None, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=acting_user,
            patient=contact.patient,
            obj=contact,
            detail={"contact": "removed"},
            request=request,
        )
        contact.delete()


REVEALABLE = {"phone": AuditAction.REVEAL_PHONE, "id_number": AuditAction.REVEAL_ID}


def reveal(
    patient: Patient,
    *,
    field: str,
    acting_user: User,
    request: HttpRequest | None = None,
) -> str:
    """The full value of a masked field, audited (F7.8).

    ``field`` is ``phone``, ``id_number`` or ``contact-<id>`` (a family phone of this patient);
    anything else raises KeyError.
    """
    obj: object | None = None
    if field.startswith("contact-"):
        contact_id = field.removeprefix("contact-")
        contact = patient.contacts.filter(pk=contact_id).first() if contact_id.isdigit() else None
        if contact is None:
            raise KeyError(field)
        action, value, obj = AuditAction.REVEAL_PHONE, contact.phone, contact
    elif field in REVEALABLE:
        action, value = REVEALABLE[field], getattr(patient, field)
    else:
        raise KeyError(field)
    audit.record(action, user=acting_user, patient=patient, obj=obj, request=request)
    return str(value)


def record_view(
    patient: Patient,
    *,
    acting_user: User,
    screen: str = "detail",
    request: HttpRequest | None = None,
) -> None:
    """Note that someone opened a patient's record (F7.6)."""
    audit.record(
        AuditAction.VIEW_PATIENT,
        user=acting_user,
        patient=patient,
        detail={"screen": screen},
        request=request,
    )


def block_phone(*, phone: str, kind: str, reason: str = "", acting_user: User | None) -> PhoneBlock:
    """Block an inbound number or mark it never to be dialled (F1.7).

    Raises ValueError for an invalid number or one already blocked the same way.
    """
    phone = normalize_phone(phone)
    with transaction.atomic():
        block, created = PhoneBlock.objects.get_or_create(
            phone=phone, kind=kind, defaults={"reason": reason.strip(), "created_by": acting_user}
        )
    if not created:
        raise ValueError("this number is already on the list")
    logger.info("phone block %s added by user %s", block.pk, getattr(acting_user, "pk", None))
    return block


def unblock_phone(block: PhoneBlock, *, acting_user: User | None) -> None:
    logger.info("phone block %s removed by user %s", block.pk, getattr(acting_user, "pk", None))
    block.delete()
