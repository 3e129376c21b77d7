"""Patient screens for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.core.screens import Screen
from careloop.core.testing import make_encounter, make_patient
from careloop.patients.tests.factories import make_block, make_contact
from careloop.patients.tests.screens_import import SCREENS as IMPORT_SCREENS


def _patient(department):  # type: ignore[no-untyped-def]
    patient = make_patient()
    make_encounter(patient, department)
    return patient


def _cardio(h):  # type: ignore[no-untyped-def]
    return _patient(h.cardio)


def _ortho(h):  # type: ignore[no-untyped-def]
    return _patient(h.ortho)


def _contact_url(patient):  # type: ignore[no-untyped-def]
    return f"/patients/{patient.pk}/contacts/{make_contact(patient).pk}/delete/"


_FLAGS = {"do_not_contact": "on"}
_CONTACT = {"name": "张小明", "relation": "child", "phone": "13900139001"}

SCREENS = [
    Screen(name="patient_list", url=lambda h: "/patients/", allowed="alice"),
    Screen(name="patient_list_search", url=lambda h: "/patients/?q=zs", allowed="henry"),
    Screen(
        name="patient_export", url=lambda h: "/patients/export/", allowed="alice", denied="erin"
    ),
    Screen(name="patient_create", url=lambda h: "/patients/new/", allowed="alice", denied="erin"),
    Screen(
        name="patient_detail",
        url=lambda h: f"/patients/{_cardio(h).pk}/",
        allowed="alice",
        other_department=lambda h: f"/patients/{_ortho(h).pk}/",
    ),
    Screen(
        name="patient_edit",
        url=lambda h: f"/patients/{_cardio(h).pk}/edit/",
        allowed="alice",
        denied="dave",
        other_department=lambda h: f"/patients/{_ortho(h).pk}/edit/",
    ),
    Screen(
        name="patient_reveal_phone",
        url=lambda h: f"/patients/{_cardio(h).pk}/reveal/phone/",
        allowed="alice",
        denied="henry",
        other_department=lambda h: f"/patients/{_ortho(h).pk}/reveal/phone/",
        method="post",
    ),
    Screen(
        name="patient_flags",
        url=lambda h: f"/patients/{_cardio(h).pk}/flags/",
        allowed="carol",
        denied="erin",
        other_department=lambda h: f"/patients/{_ortho(h).pk}/flags/",
        method="post",
        data=_FLAGS,
        ok_status=302,
    ),
    Screen(
        name="patient_contact_add",
        url=lambda h: f"/patients/{_cardio(h).pk}/contacts/add/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/patients/{_ortho(h).pk}/contacts/add/",
        method="post",
        data=_CONTACT,
        ok_status=302,
    ),
    Screen(
        name="patient_contact_remove",
        url=lambda h: _contact_url(_cardio(h)),
        allowed="alice",
        denied="henry",
        other_department=lambda h: _contact_url(_ortho(h)),
        method="post",
        ok_status=302,
    ),
    Screen(name="phone_blocks", url=lambda h: "/patients/blocks/", allowed="carol", denied="alice"),
    Screen(
        name="phone_block_add",
        url=lambda h: "/patients/blocks/add/",
        allowed="carol",
        denied="alice",
        method="post",
        data={"phone": "13700137001", "kind": "inbound", "reason": "骚扰"},
        ok_status=302,
    ),
    Screen(
        name="phone_block_remove",
        url=lambda h: f"/patients/blocks/{make_block().pk}/delete/",
        allowed="frank",
        denied="erin",
        method="post",
        ok_status=302,
    ),
]

# The import screens are listed by their own module, owned with the importer.
SCREENS += IMPORT_SCREENS
