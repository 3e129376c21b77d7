"""The web import (F1.3): upload, column mapping, report and the rejected rows as xlsx."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from huey.contrib.djhuey import HUEY

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.tests import test_screen_permissions as checks
from careloop.patients.choices import ImportStatus
from careloop.patients.importing import staging
from careloop.patients.models import Encounter, ImportBatch, Patient
from careloop.patients.tests.data.import_files import messy_xlsx, write_xlsx
from careloop.patients.tests.screens_import import SCREENS

ODD_HEADER = ["患者编号", "病人", "手机", "离院日期", "备注"]
ODD_ROWS = [
    ["R0001", "柏一", "13800138000", "2024-03-05", "复查"],
    ["R0002", "柏二", "13800138001", "2024-03-06", None],
    ["R0003", "柏三", "not a phone", "2024-03-06", None],
]


@pytest.fixture(autouse=True)
def setup(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


def upload(client, path: Path, **data):
    with path.open("rb") as handle:
        return client.post(
            "/patients/import/",
            {"file": SimpleUploadedFile(path.name, handle.read()), **data},
            HTTP_ACCEPT_LANGUAGE="en",
        )


def test_recognised_file_is_imported_at_once_and_reported(client, hospital, tmp_path):
    client.force_login(hospital.frank)

    response = upload(client, messy_xlsx(tmp_path / "出院患者.xlsx"))

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response.url == f"/patients/import/{batch.pk}/"
    assert (batch.status, batch.created, len(batch.rejected)) == (ImportStatus.DONE, 4, 4)
    assert not (tmp_path / "media" / "imports" / str(batch.pk)).exists()  # staged file removed
    report = client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "出院患者.xlsx" in report
    assert "出院科室: unknown department “神经外科”" in report
    assert "Blank lines, title lines above the header and header lines" in report
    assert Patient.objects.count() == 3


def test_unrecognised_headers_go_through_the_mapping_step(client, hospital, tmp_path):
    client.force_login(hospital.carol)
    path = write_xlsx(tmp_path / "odd.xlsx", ODD_ROWS, header=ODD_HEADER)

    response = upload(client, path, department=hospital.cardio.pk)

    batch = ImportBatch.objects.get()
    assert batch.status == ImportStatus.PENDING
    assert response.url == f"/patients/import/{batch.pk}/?department={hospital.cardio.pk}"
    page = client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "The header was found on row 2." in page
    assert "not recognised" in page
    assert "138****8000" in page  # sample values, masked
    assert "柏一" in page

    mapped = client.post(
        f"/patients/import/{batch.pk}/",
        {
            "col_0": "record_no",
            "col_1": "name",
            "col_2": "phone",
            "col_3": "discharged_at",
            "col_4": "",
            "department": hospital.cardio.pk,
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert mapped.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.created, batch.rejected) == (
        ImportStatus.DONE,
        2,
        [{"row": 5, "reason": "手机: not a valid phone number"}],
    )
    assert batch.column_mapping == {
        "患者编号": "record_no",
        "病人": "name",
        "手机": "phone",
        "离院日期": "discharged_at",
        "备注": "",
    }
    assert Encounter.objects.filter(department=hospital.cardio).count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.IMPORT, user=hospital.carol).count() == 1

    # The same headers again: the mapping is remembered, no mapping step.
    again = upload(client, path, department=hospital.cardio.pk)
    second = ImportBatch.objects.latest("pk")
    assert again.url == f"/patients/import/{second.pk}/"
    assert (second.status, second.unchanged, len(second.rejected)) == (ImportStatus.DONE, 2, 1)


def test_review_shows_the_mapping_even_when_every_column_is_recognised(client, hospital, tmp_path):
    client.force_login(hospital.frank)

    response = upload(client, messy_xlsx(tmp_path / "messy.xlsx"), review="on")

    batch = ImportBatch.objects.get()
    assert batch.status == ImportStatus.PENDING
    page = client.get(response.url, HTTP_ACCEPT_LANGUAGE="en")
    form = page.context["form"]
    assert form["col_1"].initial == "name"
    assert form["col_11"].initial == "department"
    assert form["col_0"].initial == ""  # 序号 is known and not imported
    assert not Patient.objects.exists()


def test_mapping_without_an_identifier_is_refused(client, hospital, tmp_path):
    client.force_login(hospital.carol)
    upload(client, write_xlsx(tmp_path / "odd.xlsx", ODD_ROWS, header=ODD_HEADER))
    batch = ImportBatch.objects.get()

    response = client.post(
        f"/patients/import/{batch.pk}/",
        {"col_0": "", "col_1": "name", "col_2": "phone"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    assert "Map at least one column to the medical record number" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == ImportStatus.PENDING


def test_uploads_left_at_the_mapping_step_expire(client, hospital, tmp_path):
    client.force_login(hospital.carol)
    upload(client, write_xlsx(tmp_path / "odd.xlsx", ODD_ROWS, header=ODD_HEADER))
    batch = ImportBatch.objects.get()
    staged = staging.staged_path(batch)
    assert staged.exists()

    assert staging.expire_pending(now=batch.started_at + dt.timedelta(hours=23)) == 0
    assert staging.expire_pending(now=batch.started_at + dt.timedelta(hours=25)) == 1

    batch.refresh_from_db()
    assert batch.status == ImportStatus.FAILED
    assert not staged.exists()


def test_unreadable_upload_is_reported_and_recorded(client, hospital, tmp_path):
    client.force_login(hospital.carol)
    path = tmp_path / "list.csv"
    path.write_bytes("随访名单\n".encode())

    response = upload(client, path)

    assert response.status_code == 200
    assert "No header row found" in response.content.decode()
    batch = ImportBatch.objects.get()
    assert batch.status == ImportStatus.FAILED


def test_rejected_rows_download_as_xlsx(client, hospital, tmp_path):
    client.force_login(hospital.frank)
    upload(client, messy_xlsx(tmp_path / "messy.xlsx"))
    batch = ImportBatch.objects.get()

    response = client.get(f"/patients/import/{batch.pk}/rejected.xlsx", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Reason")
    assert [r[0] for r in rows[1:]] == [7, 8, 9, 11]
    assert rows[2][1] == "出院科室: unknown department “神经外科”"


def test_large_file_is_imported_by_the_worker(
    client, hospital, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(staging, "SYNC_ROW_LIMIT", 5)
    monkeypatch.setattr(HUEY, "immediate", True)
    client.force_login(hospital.frank)
    rows = [[f"R{n:04d}", f"病人{n}", f"138001380{n:02d}"] for n in range(1, 13)]
    path = write_xlsx(tmp_path / "big.xlsx", rows, header=["病案号", "姓名", "联系电话"])

    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(client, path)

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert (batch.status, batch.created) == (ImportStatus.RUNNING, 0)  # queued, not run yet
    for callback in callbacks:
        callback()
    batch.refresh_from_db()
    assert (batch.status, batch.created) == (ImportStatus.DONE, 12)
    assert Patient.objects.count() == 12


def test_running_import_page_polls_for_progress(client, hospital):
    batch = ImportBatch.objects.create(
        file_name="big.xlsx", status=ImportStatus.RUNNING, created_by=hospital.carol, created=1000
    )
    client.force_login(hospital.carol)

    page = client.get(f"/patients/import/{batch.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'hx-trigger="every 2s"' in page
    assert "The import is running" in page


def test_nurse_may_not_import(client, hospital, tmp_path):
    client.force_login(hospital.alice)

    assert client.get("/patients/import/").status_code == 403
    assert upload(client, messy_xlsx(tmp_path / "messy.xlsx")).status_code == 403
    assert not Patient.objects.exists()


def test_another_supervisors_import_is_not_found(client, hospital):
    other = ImportBatch.objects.create(file_name="x.xlsx", created_by=hospital.frank)
    client.force_login(hospital.carol)

    assert client.get(f"/patients/import/{other.pk}/").status_code == 404


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.name)
def test_import_screens_pass_the_shared_permission_checks(hospital, screen):
    """The checks of careloop/core/tests/test_screen_permissions.py, until screens.py lists these."""
    checks.test_anonymous_is_sent_to_login(Client(), hospital, screen)
    checks.test_user_without_permission_gets_403(Client(), hospital, screen)
    if screen.other_department:
        checks.test_other_departments_record_is_404(Client(), hospital, screen)
    checks.test_allowed_user_gets_the_screen(Client(), hospital, screen)
