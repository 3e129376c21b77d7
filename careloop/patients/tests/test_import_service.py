"""The patient import service (F1.3) on messy hospital exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError
from django.utils import translation

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core import testing
from careloop.patients.choices import EncounterKind, ImportStatus, Relation, Sex
from careloop.patients.importing import ReadError, import_file
from careloop.patients.importing.writer import ChunkWriter, derived_encounter_no
from careloop.patients.models import Encounter, ImportBatch, Patient, PatientContact, Surgery
from careloop.patients.tests.data.import_files import (
    HEADER,
    ZHANG_ID,
    change_phone,
    id_number,
    messy_rows,
    messy_xlsx,
    row,
    write_xlsx,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MESSY_REJECTED = [
    {"row": 7, "reason": "身份证号: ID-card number check digit is wrong"},
    {"row": 8, "reason": "出院科室: unknown department “神经外科”"},
    {"row": 9, "reason": "the name is missing (needed for a new patient)"},
    {"row": 11, "reason": "联系电话: not a valid phone number"},
]


@pytest.fixture(autouse=True)
def english(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast personas
    with translation.override("en"):
        yield


def run(path: Path, **options):
    options.setdefault("acting_user", None)
    return import_file(path, file_name=path.name, **options)


@pytest.mark.parametrize("chunk_size", [2, 1000])
def test_messy_workbook_rows_are_created_or_rejected_with_spreadsheet_row_numbers(
    hospital, tmp_path, chunk_size
):
    outcome = run(messy_xlsx(tmp_path / "出院患者.xlsx"), chunk_size=chunk_size)

    assert outcome.as_json() == {
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": MESSY_REJECTED,
    }
    assert outcome.header_row == 2
    assert outcome.blank_rows == 2
    assert outcome.repeated_headers == 1
    assert sorted(Patient.objects.values_list("record_no", flat=True)) == [
        "R0001",
        "R0002",
        "R0006",
    ]
    assert Encounter.objects.count() == 4


def test_messy_values_are_cleaned(hospital, tmp_path):
    run(messy_xlsx(tmp_path / "messy.xlsx"))

    zhang = Patient.objects.get(record_no="R0001")
    assert (zhang.name, zhang.name_initials, zhang.sex) == ("张三", "zs", Sex.MALE)
    assert zhang.birth_date == dt.date(1960, 5, 17)
    assert (zhang.id_number, zhang.phone, zhang.card_no) == (ZHANG_ID, "13800138000", "C0001")
    contact = PatientContact.objects.get(patient=zhang)
    assert (contact.name, contact.phone, contact.relation) == (
        "张小明",
        "13900139000",
        Relation.CHILD,
    )
    stay = Encounter.objects.get(encounter_no="ZY20240001")
    assert stay.patient == zhang and stay.department == hospital.cardio
    assert stay.kind == EncounterKind.INPATIENT
    assert (stay.ward, stay.bed) == ("一病区", "12")
    assert stay.started_at == dt.datetime(2024, 3, 1, 8, 30, tzinfo=SHANGHAI)
    assert stay.discharged_at == dt.datetime(2024, 3, 5, tzinfo=SHANGHAI)
    assert (stay.diagnosis_code, stay.diagnosis_name) == ("I21.901", "急性心肌梗死")
    assert stay.attending_doctor == hospital.dave
    assert stay.attending_doctor_name == "刘大卫"
    second = Encounter.objects.get(encounter_no="ZY20240002")
    assert second.patient == zhang and second.department == hospital.ortho

    li = Patient.objects.get(record_no="R0002")
    assert (li.name, li.sex, li.birth_date) == ("李四", Sex.FEMALE, dt.date(1975, 8, 9))
    assert li.phone == "13900139001"
    li_stay = li.encounters.get()
    assert li_stay.encounter_no == derived_encounter_no(
        li.pk, dt.datetime(2024, 3, 1, tzinfo=SHANGHAI), hospital.cardio.pk
    )
    assert li_stay.started_at == dt.datetime(2024, 3, 1, tzinfo=SHANGHAI)  # Excel serial 45352
    assert li_stay.discharged_at == dt.datetime(2024, 3, 6, tzinfo=SHANGHAI)

    qian = Patient.objects.get(record_no="R0006")
    assert (qian.name, qian.sex, qian.birth_date) == ("钱七", Sex.FEMALE, dt.date(1980, 1, 2))
    assert qian.phone == "021-12345678"
    qian_stay = qian.encounters.get()
    assert qian_stay.department == hospital.ortho
    assert qian_stay.started_at == dt.datetime(2024, 3, 2, tzinfo=SHANGHAI)
    assert qian_stay.discharged_at == dt.datetime(2024, 3, 8, 10, 0, tzinfo=SHANGHAI)


def test_reimporting_the_same_file_changes_nothing(hospital, tmp_path):
    path = messy_xlsx(tmp_path / "messy.xlsx")
    run(path)
    before = list(Patient.objects.order_by("pk").values())
    encounters = list(Encounter.objects.order_by("pk").values())

    again = run(path)

    assert again.as_json() == {
        "created": 0,
        "updated": 0,
        "unchanged": 4,
        "rejected": MESSY_REJECTED,
    }
    assert list(Patient.objects.order_by("pk").values()) == before
    assert list(Encounter.objects.order_by("pk").values()) == encounters
    assert PatientContact.objects.count() == 1


def test_changed_phone_updates_only_that_patient(hospital, tmp_path):
    rows = messy_rows()
    run(write_xlsx(tmp_path / "first.xlsx", rows))
    change_phone(rows, record_no="Ｒ０００２", phone="13700137000")

    outcome = run(write_xlsx(tmp_path / "second.xlsx", rows))

    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 1, 3)
    assert Patient.objects.get(record_no="R0002").phone == "13700137000"
    assert Patient.objects.count() == 3


def test_empty_cells_and_absent_columns_keep_stored_values(hospital, tmp_path):
    patient = testing.make_patient(
        name="周九", record_no="R0100", phone="13800138100", address="北京市东城区"
    )
    header = ["病案号", "姓名", "联系电话", "地址"]
    path = write_xlsx(tmp_path / "partial.xlsx", [["R0100", "周九", None, None]], header=header)

    outcome = run(path)

    assert (outcome.updated, outcome.unchanged) == (0, 1)
    patient.refresh_from_db()
    assert (patient.phone, patient.address) == ("13800138100", "北京市东城区")


def test_existing_patient_is_found_by_card_then_id_number(hospital, tmp_path):
    by_card = testing.make_patient(
        name="吴十", record_no=None, card_no="C0200", phone="13800138200"
    )
    by_id = testing.make_patient(
        name="郑十一", record_no=None, card_no=None, id_number=id_number("11010119800101002")
    )
    header = ["病案号", "就诊卡号", "身份证号", "联系电话"]
    rows = [
        ["R0200", "C0200", None, "13800138201"],
        [None, None, id_number("11010119800101002"), "13800138202"],
    ]

    outcome = run(write_xlsx(tmp_path / "ids.xlsx", rows, header=header, title=None))

    assert (outcome.created, outcome.updated, outcome.rejected) == (0, 2, [])
    by_card.refresh_from_db()
    by_id.refresh_from_db()
    assert (by_card.record_no, by_card.phone) == ("R0200", "13800138201")
    assert by_id.phone == "13800138202"
    assert by_id.sex == Sex.FEMALE and by_id.birth_date == dt.date(1980, 1, 1)


def test_identifiers_of_different_patients_are_rejected_not_merged(hospital, tmp_path):
    testing.make_patient(name="甲", record_no="R0300", card_no="C0300")
    testing.make_patient(name="乙", record_no="R0301", card_no="C0301")
    header = ["病案号", "就诊卡号", "姓名"]
    rows = [
        ["R0300", "C0301", "甲"],  # row 2: card of another patient
        ["R0399", "C0300", "丙"],  # row 3: card of a patient with another record number
    ]

    outcome = run(write_xlsx(tmp_path / "clash.xlsx", rows, header=header, title=None))

    assert outcome.rejected == [
        {"row": 2, "reason": "the Visit card number belongs to another patient"},
        {
            "row": 3,
            "reason": "the Visit card number belongs to a patient with another Medical record number",
        },
    ]
    assert Patient.objects.count() == 2


def test_sex_or_birth_date_contradicting_the_id_number_is_rejected(hospital, tmp_path):
    header = ["病案号", "姓名", "性别", "出生日期", "身份证号"]
    rows = [
        ["R0400", "冯一", "女", None, ZHANG_ID],
        ["R0401", "冯二", None, "1960-05-18", ZHANG_ID],
        ["R0402", "冯三", "未知", "1960-05-17", ZHANG_ID],
    ]

    outcome = run(write_xlsx(tmp_path / "id.xlsx", rows, header=header, title=None))

    assert outcome.rejected == [
        {"row": 2, "reason": "the sex does not match the ID-card number"},
        {"row": 3, "reason": "the birth date does not match the ID-card number"},
    ]
    assert Patient.objects.get(record_no="R0402").sex == Sex.MALE


def test_csv_in_gbk_with_blank_lines(hospital, tmp_path):
    text = (
        "姓名,性别,病案号,联系电话,家属电话,科室,出院日期\r\n"
        "陈一,男,R0500,13800138500,13900139500,心内科,2024-03-05\r\n"
        "\r\n"
        "陈二,女,R0501,138 0013 8501,,骨科,2024/3/6 14:30\r\n"
        "陈三,女,R0502,13800138502,,外星科,2024/3/6\r\n"
    )
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("gbk"))

    outcome = run(path)

    assert outcome.as_json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": [{"row": 5, "reason": "科室: unknown department “外星科”"}],
    }
    assert outcome.blank_rows == 1
    chen = Patient.objects.get(record_no="R0500")
    assert chen.name == "陈一"
    assert chen.contacts.get().relation == Relation.OTHER
    stay = Patient.objects.get(record_no="R0501").encounters.get()
    assert stay.discharged_at == dt.datetime(2024, 3, 6, 14, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_are_detected(hospital, tmp_path, encoding):
    path = tmp_path / "export.csv"
    path.write_bytes("姓名,病案号,联系电话\n褚一,R0600,13800138600\n".encode(encoding))

    outcome = run(path)

    assert outcome.created == 1
    assert Patient.objects.get(record_no="R0600").name == "褚一"


def test_default_department_for_files_without_one(hospital, tmp_path):
    header = ["姓名", "病案号", "出院日期", "手术名称", "手术日期", "手术编码"]
    rows = [["卫一", "R0700", "2024-03-05", "经皮冠状动脉支架植入术", "2024-03-02", "36.0601"]]
    path = write_xlsx(tmp_path / "cardio.xlsx", rows, header=header, title=None)

    outcome = run(path, default_department=hospital.cardio)
    again = run(path, default_department=hospital.cardio)

    assert (outcome.created, again.unchanged) == (1, 1)
    stay = Encounter.objects.get()
    assert stay.department == hospital.cardio
    surgery = Surgery.objects.get()
    assert (surgery.encounter, surgery.code) == (stay, "36.0601")
    assert surgery.performed_at == dt.datetime(2024, 3, 2, tzinfo=SHANGHAI)


def test_encounter_without_department_is_rejected(hospital, tmp_path):
    header = ["姓名", "病案号", "出院日期"]
    path = write_xlsx(tmp_path / "nodept.xlsx", [["蒋一", "R0800", "2024-03-05"]], header=header)

    outcome = run(path)

    assert outcome.rejected == [
        {
            "row": 3,
            "reason": "the encounter has no department: add a department column or choose a "
            "default department",
        }
    ]
    assert not Patient.objects.exists()


def test_multiple_phones_in_one_cell_become_contacts(hospital, tmp_path):
    header = ["姓名", "病案号", "联系电话"]
    rows = [["沈一", "R0900", "13800138900/13800138901，010-87654321"]]

    run(write_xlsx(tmp_path / "phones.xlsx", rows, header=header, title=None))

    patient = Patient.objects.get(record_no="R0900")
    assert patient.phone == "13800138900"
    assert sorted(patient.contacts.values_list("phone", "relation")) == [
        ("010-87654321", Relation.SELF),
        ("13800138901", Relation.SELF),
    ]


def test_file_without_identifier_column_fails_and_is_recorded(hospital, tmp_path):
    path = write_xlsx(tmp_path / "names.xlsx", [["韩一", "13800138000"]], header=["姓名", "电话"])

    with pytest.raises(ReadError, match="cannot be identified"):
        run(path)

    batch = ImportBatch.objects.get()
    assert batch.status == ImportStatus.FAILED
    assert "cannot be identified" in batch.error


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "save the file as .xlsx"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "not a readable Excel workbook"),
        ("title.csv", "随访名单\n\n".encode(), "No header row found"),
    ],
)
def test_unreadable_files_raise_a_clear_error(hospital, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ReadError, match=message):
        run(path)


def test_batch_and_audit_event_record_counts_only(hospital, tmp_path):
    outcome = run(messy_xlsx(tmp_path / "messy.xlsx"), acting_user=hospital.frank)

    batch = outcome.batch
    batch.refresh_from_db()
    assert (batch.status, batch.created, batch.updated, batch.unchanged) == (
        ImportStatus.DONE,
        4,
        0,
        0,
    )
    assert batch.rejected == MESSY_REJECTED
    assert batch.created_by == hospital.frank
    assert batch.column_mapping["出院科室"] == "department"
    assert batch.column_mapping["序号"] == ""
    event = AuditEvent.objects.get(action=AuditAction.IMPORT)
    assert event.user == hospital.frank
    assert event.detail == {
        "batch": batch.pk,
        "status": "done",
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": 4,
    }


def test_dry_run_saves_nothing(hospital, tmp_path):
    outcome = run(messy_xlsx(tmp_path / "messy.xlsx"), dry_run=True)

    assert (outcome.created, len(outcome.rejected)) == (4, 4)
    assert not Patient.objects.exists()
    assert not ImportBatch.objects.exists()


def test_department_bound_user_imports_only_into_their_departments(hospital, tmp_path):
    other = testing.make_patient(name="杨一", record_no="R1000", phone="13800131000")
    testing.make_encounter(other, hospital.ortho)
    header = ["姓名", "病案号", "联系电话", "科室", "出院日期"]
    rows = [
        ["秦一", "R1001", "13800131001", "心内科", "2024-03-05"],
        ["秦二", "R1002", "13800131002", "骨科", "2024-03-05"],
        ["杨一", "R1000", "13900131000", None, None],
    ]

    outcome = run(
        write_xlsx(tmp_path / "scope.xlsx", rows, header=header, title=None),
        acting_user=hospital.carol,
    )

    assert outcome.created == 1
    assert outcome.rejected == [
        {"row": 3, "reason": "you may not import into the department “骨科”"},
        {"row": 4, "reason": "the patient is not treated in one of your departments"},
    ]
    other.refresh_from_db()
    assert other.phone == "13800131000"


def test_a_database_conflict_rejects_only_its_row(hospital, tmp_path, monkeypatch):
    header = ["姓名", "病案号"]
    rows = [["许一", "R1100"], ["许二", "R1101"], ["许三", "R1102"]]
    flush = ChunkWriter._flush

    def flush_failing_on_r1101(writer):
        if any(r.record_no == "R1101" for r in writer.rows):
            raise IntegrityError("simulated conflict")
        flush(writer)

    monkeypatch.setattr(ChunkWriter, "_flush", flush_failing_on_r1101)

    outcome = run(write_xlsx(tmp_path / "conflict.xlsx", rows, header=header, title=None))

    assert outcome.created == 2
    assert outcome.rejected == [
        {"row": 3, "reason": "could not be saved: it conflicts with a stored record"}
    ]
    assert sorted(Patient.objects.values_list("record_no", flat=True)) == ["R1100", "R1102"]


def test_new_discharges_are_enrolled_after_the_import(
    hospital, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    from careloop.followup import services as followup_services

    calls = []
    monkeypatch.setattr(
        followup_services, "auto_enrol", lambda **kw: calls.append(kw) or 0, raising=False
    )

    with django_capture_on_commit_callbacks(execute=True):
        run(messy_xlsx(tmp_path / "messy.xlsx"))

    assert calls == [{}]


def test_header_rows_of_other_exports_are_recognised(hospital, tmp_path):
    header = ["Name", "Sex", "Record No.", "Mobile", "Department", "Discharge date", "备注"]
    rows = [["Li Lei", "M", "R1200", "13800131200", "ORTH", "2024-03-05", "复查"]]

    outcome = run(write_xlsx(tmp_path / "english.xlsx", rows, header=header, title=None))

    assert outcome.created == 1
    assert outcome.ignored_columns == ["备注"]
    assert Patient.objects.get().name == "Li Lei"
    assert HEADER[0] == "序号"
    assert row(姓名="x")[1] == "x"
