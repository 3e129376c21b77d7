"""``careloop import patients FILE`` (the ``import_patients`` management command)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from careloop import cli
from careloop.patients.models import ImportBatch, Patient
from careloop.patients.tests.data.import_files import messy_xlsx, write_xlsx


@pytest.fixture(autouse=True)
def english(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with translation.override("en"):
        yield


def command(*args: str) -> str:
    out = StringIO()
    call_command("import_patients", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_one_object_with_counts_and_rejected_rows(hospital, tmp_path):
    path = messy_xlsx(tmp_path / "messy.xlsx")

    first = json.loads(command(str(path), "--json"))
    second = json.loads(command(str(path), "--json"))

    assert first == {
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": [
            {"row": 7, "reason": "身份证号: ID-card number check digit is wrong"},
            {"row": 8, "reason": "出院科室: unknown department “神经外科”"},
            {"row": 9, "reason": "the name is missing (needed for a new patient)"},
            {"row": 11, "reason": "联系电话: not a valid phone number"},
        ],
    }
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 4)
    assert ImportBatch.objects.count() == 2


def test_readable_summary(hospital, tmp_path):
    output = command(str(messy_xlsx(tmp_path / "messy.xlsx")))

    assert "messy.xlsx: header on row 2, 8 data rows" in output
    assert "created             4" in output
    assert "rejected            4" in output
    assert "Skipped, not counted: 2 blank lines, 1 repeated header lines" in output
    assert "row 8: 出院科室: unknown department “神经外科”" in output
    assert "Columns not imported: 序号" in output


def test_mapping_and_default_department_options(hospital, tmp_path):
    header = ["患者编号", "病人", "手机", "离院日期"]
    path = write_xlsx(
        tmp_path / "odd.xlsx", [["R0001", "柏一", "13800138000", "2024-03-05"]], header=header
    )
    mapping = json.dumps({"患者编号": "record_no", "离院日期": "discharged_at"}, ensure_ascii=False)

    result = json.loads(command(str(path), "--json", "--mapping", mapping, "--department", "card"))

    assert (result["created"], result["rejected"]) == (1, [])
    patient = Patient.objects.get(record_no="R0001")
    assert patient.phone == "13800138000"
    assert patient.encounters.get().department == hospital.cardio


def test_mapping_may_be_read_from_a_file(hospital, tmp_path):
    path = write_xlsx(tmp_path / "odd.xlsx", [["R0001", "柏一"]], header=["患者编号", "病人"])
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text('{"患者编号": "record_no"}', encoding="utf-8")

    assert json.loads(command(str(path), "--json", "--mapping", str(mapping_file)))["created"] == 1


def test_dry_run_reports_without_saving(hospital, tmp_path):
    output = command(str(messy_xlsx(tmp_path / "messy.xlsx")), "--dry-run")

    assert "Dry run: nothing was saved." in output
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mapping", '{"姓名": "shoe_size"}'], "Unknown field “shoe_size”"),
        (["--mapping", "{not json"], "--mapping: invalid JSON"),
        (["--department", "NOPE"], "no department with the code or name “NOPE”"),
    ],
)
def test_bad_options_exit_with_code_2(hospital, tmp_path, args, message):
    path = messy_xlsx(tmp_path / "messy.xlsx")

    with pytest.raises(CommandError, match=message) as error:
        command(str(path), *args)

    assert error.value.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_console_exit_codes(hospital, tmp_path, capsys):
    good = messy_xlsx(tmp_path / "messy.xlsx")
    missing = tmp_path / "missing.xlsx"

    cli.main(["import", "patients", str(good), "--json"])
    printed = json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["import", "patients", str(missing), "--json"])

    assert printed["created"] == 4
    assert exit_info.value.code == 2
    assert "missing.xlsx: The file does not exist." in capsys.readouterr().err
