"""Import screens for the shared permission test (careloop/core/screens.py).

Collected through ``careloop/patients/tests/screens.py``.
"""

from __future__ import annotations

from careloop.core.screens import Screen
from careloop.patients.choices import ImportStatus
from careloop.patients.models import ImportBatch


def _batch(user) -> ImportBatch:  # type: ignore[no-untyped-def]
    return ImportBatch.objects.create(
        file_name="出院患者.xlsx",
        status=ImportStatus.DONE,
        created_by=user,
        created=3,
        rejected=[{"row": 5, "reason": "联系电话: not a valid phone number"}],
        column_mapping={"姓名": "name", "病案号": "record_no"},
    )


SCREENS = [
    Screen(
        name="patient_import", url=lambda h: "/patients/import/", allowed="carol", denied="alice"
    ),
    Screen(
        name="patient_import_report",
        url=lambda h: f"/patients/import/{_batch(h.carol).pk}/",
        allowed="carol",
        denied="alice",
        other_department=lambda h: f"/patients/import/{_batch(h.frank).pk}/",
    ),
    Screen(
        name="patient_import_rejected",
        url=lambda h: f"/patients/import/{_batch(h.carol).pk}/rejected.xlsx",
        allowed="carol",
        denied="erin",
        other_department=lambda h: f"/patients/import/{_batch(h.frank).pk}/rejected.xlsx",
    ),
]
