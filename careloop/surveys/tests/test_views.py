"""The questionnaire screens: list, create, designer, preview, response detail."""

from __future__ import annotations

import json

import pytest

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.testing import make_encounter, make_patient
from careloop.surveys import services
from careloop.surveys.models import Questionnaire, Response
from careloop.surveys.tests.factories import basic_definition, make_questionnaire, make_response

pytestmark = pytest.mark.django_db


def designer_post(client, questionnaire, definition, action="save", title="心内科出院随访"):
    return client.post(
        f"/surveys/{questionnaire.pk}/edit/",
        {
            "title": title,
            "description": "",
            "definition": json.dumps(definition, ensure_ascii=False),
            "action": action,
        },
    )


def test_list_shows_active_questionnaires_and_archived_ones_apart(client, hospital):
    active = make_questionnaire(title="PCI术后随访")
    archived = make_questionnaire(title="旧问卷")
    services.archive(archived, acting_user=None)
    client.force_login(hospital.alice)
    page = client.get("/surveys/").content.decode()
    assert "PCI术后随访" in page and "旧问卷" not in page
    assert f"/surveys/{active.pk}/" in page
    assert "旧问卷" in client.get("/surveys/?archived=1").content.decode()
    assert "PCI术后随访" not in client.get("/surveys/?q=旧").content.decode()


def test_doctor_creates_a_questionnaire_for_their_department(client, hospital):
    client.force_login(hospital.dave)
    response = client.post(
        "/surveys/new/",
        {"title": "心衰随访", "code": "", "description": "", "department": hospital.cardio.pk},
    )
    questionnaire = Questionnaire.objects.get(title="心衰随访")
    assert response.status_code == 302 and response.url == f"/surveys/{questionnaire.pk}/edit/"
    assert questionnaire.department == hospital.cardio
    assert questionnaire.code == "xin-shuai-sui-fang"
    assert questionnaire.versions.get().number == 1


def test_doctor_cannot_create_for_another_department_or_hospital_wide(client, hospital):
    client.force_login(hospital.dave)
    response = client.post("/surveys/new/", {"title": "骨科问卷", "department": hospital.ortho.pk})
    assert response.status_code == 200
    assert "department" in response.context["form"].errors
    response = client.post("/surveys/new/", {"title": "全院问卷", "department": ""})
    assert "department" in response.context["form"].errors
    assert not Questionnaire.objects.exists()


def test_taken_code_is_reported_on_the_form(client, hospital):
    make_questionnaire(code="pci")
    client.force_login(hospital.frank)
    response = client.post("/surveys/new/", {"title": "PCI", "code": "pci", "department": ""})
    assert response.status_code == 200
    assert "code" in response.context["form"].errors


def test_designer_shows_the_latest_definition(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    client.force_login(hospital.dave)
    response = client.get(f"/surveys/{questionnaire.pk}/edit/")
    definition = json.loads(response.context["form"].initial["definition"])
    assert definition["questions"][0]["key"] == "chest_pain"
    page = response.content.decode()
    assert 'id="id_definition"' in page and "surveys/designer.js" in page
    assert 'id="no-draft-note"' in page  # every version is published: saving starts v2


def test_designer_saves_a_draft(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio, published=False)
    definition = basic_definition()
    definition["questions"].append(
        {"key": "note", "type": "text", "text": "其他不适", "required": False}
    )
    client.force_login(hospital.dave)
    response = designer_post(client, questionnaire, definition, title="改名后的问卷")
    assert response.status_code == 302 and response.url == f"/surveys/{questionnaire.pk}/edit/"
    version = questionnaire.versions.get()
    assert version.published_at is None
    assert version.definition["questions"][-1]["key"] == "note"
    questionnaire.refresh_from_db()
    assert questionnaire.title == "改名后的问卷"


def test_designer_reports_errors_by_question_and_saves_nothing(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio, published=False)
    bad = basic_definition()
    bad["questions"][2]["min"] = 50  # temperature: min above max
    bad["questions"][3]["options"] = [{"value": "x", "label": "只有一个"}]
    client.force_login(hospital.dave)
    response = designer_post(client, questionnaire, bad)
    assert response.status_code == 200
    assert set(response.context["issues_by_index"]) == {"2", "3"}
    page = response.content.decode()
    assert "Question 3 (temperature)" in page and "Question 4 (medication)" in page
    # The unsaved edit stays in the form so nothing typed is lost.
    assert json.loads(response.context["form"].data["definition"]) == bad
    assert questionnaire.versions.get().definition == basic_definition()


def test_designer_reports_unreadable_json(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio, published=False)
    client.force_login(hospital.dave)
    response = client.post(
        f"/surveys/{questionnaire.pk}/edit/",
        {"title": "x", "definition": '{"questions": [', "action": "save"},
    )
    assert response.status_code == 200
    assert "not valid JSON" in response.context["form"].errors["definition"][0]


def test_designer_publishes_and_later_edits_make_version_two(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio, published=False)
    client.force_login(hospital.dave)
    response = designer_post(client, questionnaire, basic_definition(), action="publish")
    assert response.status_code == 302 and response.url == f"/surveys/{questionnaire.pk}/"
    assert questionnaire.current_version.number == 1
    changed = basic_definition()
    changed["questions"][0]["text"] = "近一周有无胸痛？"
    designer_post(client, questionnaire, changed)
    draft = questionnaire.versions.get(published_at__isnull=True)
    assert draft.number == 2
    assert questionnaire.current_version.number == 1
    page = client.get(f"/surveys/{questionnaire.pk}/").content.decode()
    assert 'id="version-2"' in page and 'id="version-1"' in page


def test_designer_discards_a_draft(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    services.start_draft(questionnaire, acting_user=None)
    client.force_login(hospital.dave)
    response = client.post(f"/surveys/{questionnaire.pk}/edit/", {"action": "discard"})
    assert response.status_code == 302
    assert list(questionnaire.versions.values_list("number", flat=True)) == [1]


def test_leader_cannot_save_in_the_designer(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio, published=False)
    client.force_login(hospital.erin)
    assert designer_post(client, questionnaire, basic_definition()).status_code == 403


def test_hospital_wide_questionnaire_is_edited_only_by_hospital_wide_staff(client, hospital):
    questionnaire = make_questionnaire(department=None)
    client.force_login(hospital.dave)
    assert client.get(f"/surveys/{questionnaire.pk}/edit/").status_code == 404
    client.force_login(hospital.frank)
    assert client.get(f"/surveys/{questionnaire.pk}/edit/").status_code == 200


def test_archived_questionnaire_is_not_editable(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    client.force_login(hospital.dave)
    client.post(f"/surveys/{questionnaire.pk}/archive/", {"action": "archive"})
    questionnaire.refresh_from_db()
    assert questionnaire.is_archived
    response = client.get(f"/surveys/{questionnaire.pk}/edit/")
    assert response.status_code == 302 and response.url == f"/surveys/{questionnaire.pk}/"
    client.post(f"/surveys/{questionnaire.pk}/archive/", {"action": "restore"})
    questionnaire.refresh_from_db()
    assert not questionnaire.is_archived


def test_detail_shows_versions_with_their_response_counts(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    patient = make_patient()
    make_encounter(patient, hospital.cardio)
    make_response(questionnaire.current_version, patient)
    make_response(questionnaire.current_version, patient)
    services.save_and_publish(questionnaire, definition=basic_definition(), acting_user=None)
    client.force_login(hospital.alice)
    response = client.get(f"/surveys/{questionnaire.pk}/")
    counts = {v.number: v.response_count for v in response.context["versions"]}
    assert counts == {1: 2, 2: 0}
    page = response.content.decode()
    assert "data-survey-fill data-readonly" in page  # current version rendered read-only
    assert " disabled" in page
    assert len(response.context["responses"]) == 2


def test_detail_lists_only_responses_of_visible_patients(client, hospital):
    questionnaire = make_questionnaire()
    ortho_patient = make_patient()
    make_encounter(ortho_patient, hospital.ortho)
    make_response(questionnaire.current_version, ortho_patient)
    client.force_login(hospital.alice)
    assert client.get(f"/surveys/{questionnaire.pk}/").context["responses"] == []


def test_preview_validates_without_saving(client, hospital):
    questionnaire = make_questionnaire()
    client.force_login(hospital.alice)
    page = client.get(f"/surveys/{questionnaire.pk}/preview/").content.decode()
    assert 'name="q_chest_pain"' in page
    response = client.post(
        f"/surveys/{questionnaire.pk}/preview/", {"q_chest_pain": "yes", "q_temperature": "43"}
    )
    assert response.context["errors"] == {
        "pain_level": "This question is required.",
        "temperature": "Enter a number between 35 and 42.",
    }
    assert 'id="error-temperature"' in response.content.decode()
    response = client.post(
        f"/surveys/{questionnaire.pk}/preview/",
        {"q_chest_pain": "no", "q_temperature": "36.5", "q_medication": "always"},
    )
    assert response.context["valid"] is True
    assert response.context["score"] == 4
    assert 'id="preview-score">4<' in response.content.decode()
    assert not Response.objects.exists()


def test_preview_answers_over_htmx_return_only_the_form(client, hospital):
    questionnaire = make_questionnaire()
    client.force_login(hospital.alice)
    response = client.post(
        f"/surveys/{questionnaire.pk}/preview/",
        {"q_chest_pain": "no", "q_temperature": "38"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert "<html" not in page and 'id="preview-form"' in page
    assert response.context["alerts"] == ["temperature"]


def test_preview_of_a_chosen_version_and_of_an_invalid_draft(client, hospital):
    questionnaire = make_questionnaire()
    services.start_draft(questionnaire, acting_user=None)
    client.force_login(hospital.alice)
    assert (
        client.get(f"/surveys/{questionnaire.pk}/preview/?version=1").context["version"].number == 1
    )
    empty = services.create_questionnaire(title="空", acting_user=None)
    response = client.get(f"/surveys/{empty.pk}/preview/")
    assert 'id="definition-errors"' in response.content.decode()


def test_response_detail_shows_answers_against_their_version_and_is_audited(client, hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    patient = make_patient(name="王小明")
    make_encounter(patient, hospital.cardio)
    answer = make_response(
        questionnaire.current_version,
        patient,
        answers={
            "chest_pain": "yes",
            "pain_level": "7",
            "temperature": "38.1",
            "medication": "sometimes",
        },
    )
    # v2 renames a question and drops another: the v1 answer sheet must not change.
    changed = basic_definition()
    changed["questions"][0]["text"] = "新版：近一周有无胸痛？"
    del changed["questions"][3]
    services.save_and_publish(questionnaire, definition=changed, acting_user=None)
    client.force_login(hospital.alice)
    response = client.get(f"/surveys/responses/{answer.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "出院后是否有胸痛？" in page and "新版" not in page
    assert "偶尔漏服" in page  # option label, from v1
    assert "38.1 °C" in page
    assert 'id="response-version">v1' in page
    assert 'id="response-score">1<' in page
    assert page.count('<span class="badge flag">Abnormal</span>') == 2  # chest pain, fever
    assert "王小明" in page
    event = AuditEvent.objects.get(action=AuditAction.VIEW_PATIENT)
    assert (event.user, event.patient, event.object_type) == (hospital.alice, patient, "Response")


def test_response_detail_marks_skipped_and_abnormal_answers(client, hospital):
    patient = make_patient()
    make_encounter(patient, hospital.cardio)
    answer = make_response(
        make_questionnaire().current_version,
        patient,
        answers={"chest_pain": "no", "temperature": "38.5", "medication": "always"},
    )
    client.force_login(hospital.alice)
    page = client.get(f"/surveys/responses/{answer.pk}/").content.decode()
    assert '<tr class="skipped" data-key="pain_level">' in page
    assert '<tr class=" alert" data-key="temperature">' in page


def test_response_of_another_departments_patient_is_404(client, hospital):
    patient = make_patient()
    make_encounter(patient, hospital.cardio)
    answer = make_response(make_questionnaire().current_version, patient)
    client.force_login(hospital.bob)
    assert client.get(f"/surveys/responses/{answer.pk}/").status_code == 404
    assert not AuditEvent.objects.exists()
    client.force_login(hospital.erin)  # hospital-wide, read-only
    assert client.get(f"/surveys/responses/{answer.pk}/").status_code == 200
