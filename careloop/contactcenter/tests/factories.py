"""Factories of contact-center rows (explicit defaults, no random data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from careloop.accounts.models import Department, User
from careloop.contactcenter.choices import CallState, Direction, PhoneKind
from careloop.contactcenter.models import AgentPhone, Call, Recording
from careloop.core import testing
from careloop.patients.models import Patient


def make_patient_in(department: Department, **overrides: Any) -> Patient:
    patient = testing.make_patient(**overrides)
    testing.make_encounter(patient, department)
    return patient


def make_agent_phone(user: User, *, uri: str = "", **overrides: Any) -> AgentPhone:
    fields: dict[str, Any] = {
        "kind": PhoneKind.FIXED if uri else PhoneKind.REGISTERED,
        "sip_username": f"agent{user.pk}",
        "sip_password": "" if uri else f"pw-{user.pk}-0123456789abcdef",
        "uri": uri or f"sip:agent{user.pk}@careloop.local",
    }
    fields.update(overrides)
    return AgentPhone.objects.create(user=user, **fields)


def make_call(agent: User, patient: Patient, **overrides: Any) -> Call:
    fields: dict[str, Any] = {
        "direction": Direction.OUTBOUND,
        "state": CallState.ENDED,
        "created_at": timezone.now(),
    }
    fields.update(overrides)
    return Call.objects.create(agent=agent, patient=patient, **fields)


def make_recording(call: Call, *, content: bytes = b"OggS" + bytes(200)) -> Recording:
    folder = Path(getattr(settings, "CC_ENGINE_DATA_DIR", settings.DATA_DIR / "engine"))
    path = folder / "recordings" / "tests" / f"call-{call.pk}.ogg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Recording.objects.create(
        call=call, recording_id=f"rec{call.pk:013d}", path=str(path), duration=1.5
    )
