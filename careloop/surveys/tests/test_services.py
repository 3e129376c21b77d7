"""Drafts, publishing, versioning, archiving and submitting responses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.http import QueryDict
from django.template.loader import render_to_string

from careloop.core.testing import make_patient
from careloop.surveys import services
from careloop.surveys.choices import ResponseChannel
from careloop.surveys.forms import answers_from_post
from careloop.surveys.models import Questionnaire, QuestionnaireVersion
from careloop.surveys.schema import AnswerError
from careloop.surveys.services import DefinitionError, SurveyError
from careloop.surveys.tests.factories import (
    basic_definition,
    latest_version,
    make_questionnaire,
    make_response,
)

pytestmark = pytest.mark.django_db


def test_create_questionnaire_starts_an_empty_draft_version_one(hospital):
    questionnaire = services.create_questionnaire(
        title="骨科术后随访", department=hospital.ortho, acting_user=hospital.dave
    )
    version = questionnaire.versions.get()
    assert (version.number, version.published_at, version.definition) == (
        1,
        None,
        {"questions": []},
    )
    assert questionnaire.code == "gu-ke-shu-hou-sui-fang"  # pinyin of the title
    assert questionnaire.created_by == hospital.dave
    assert questionnaire.current_version is None


def test_create_questionnaire_makes_codes_unique_and_refuses_a_taken_code(hospital):
    first = services.create_questionnaire(title="满意度", acting_user=None)
    second = services.create_questionnaire(title="满意度", acting_user=None)
    assert (first.code, second.code) == ("man-yi-du", "man-yi-du-2")
    with pytest.raises(SurveyError, match="already used"):
        services.create_questionnaire(title="别的", code="man-yi-du", acting_user=None)


def test_create_questionnaire_refuses_an_invalid_definition(db):
    with pytest.raises(DefinitionError):
        services.create_questionnaire(
            title="x", definition={"questions": [{"key": "A"}]}, acting_user=None
        )
    assert not Questionnaire.objects.exists()


def test_save_draft_edits_the_one_draft_in_place(hospital):
    questionnaire = services.create_questionnaire(title="问卷", acting_user=hospital.dave)
    draft = services.save_draft(
        questionnaire, definition=basic_definition(), acting_user=hospital.dave, title="新标题"
    )
    again = services.save_draft(
        questionnaire, definition=basic_definition(), acting_user=hospital.dave
    )
    assert draft.pk == again.pk and draft.number == 1
    assert questionnaire.versions.count() == 1
    questionnaire.refresh_from_db()
    assert questionnaire.title == "新标题"


def test_save_draft_refuses_an_invalid_definition_and_keeps_the_old_one(hospital):
    questionnaire = make_questionnaire(published=False)
    bad = basic_definition()
    bad["questions"][2]["min"] = 50
    with pytest.raises(DefinitionError) as info:
        services.save_draft(questionnaire, definition=bad, acting_user=hospital.dave)
    assert info.value.issues[0].key == "temperature"
    assert questionnaire.versions.get().definition == basic_definition()


def test_publish_freezes_the_version_with_explicit_keypad_digits(hospital):
    questionnaire = make_questionnaire(published=False)
    version = services.publish(questionnaire.versions.get(), acting_user=hospital.dave)
    version.refresh_from_db()
    assert version.published_at is not None
    assert [o["dtmf"] for o in version.definition["questions"][3]["options"]] == ["1", "2", "3"]
    assert questionnaire.current_version == version
    with pytest.raises(SurveyError, match="already published"):
        services.publish(version, acting_user=hospital.dave)


def test_publish_refuses_an_invalid_draft(hospital):
    questionnaire = services.create_questionnaire(title="空问卷", acting_user=None)
    with pytest.raises(DefinitionError, match="at least one question"):
        services.publish(questionnaire.versions.get(), acting_user=hospital.dave)
    assert questionnaire.versions.get().published_at is None


def test_editing_after_publishing_creates_the_next_version(hospital):
    questionnaire = make_questionnaire()
    changed = basic_definition()
    changed["questions"][0]["text"] = "最近一周是否有胸痛？"
    draft = services.save_draft(questionnaire, definition=changed, acting_user=hospital.dave)
    assert draft.number == 2 and draft.published_at is None
    assert questionnaire.current_version.number == 1  # v1 stays current until v2 is published
    services.publish(draft, acting_user=hospital.dave)
    assert questionnaire.current_version.number == 2
    v1 = questionnaire.versions.get(number=1)
    assert v1.definition["questions"][0]["text"] == "出院后是否有胸痛？"


def test_start_draft_copies_the_latest_version(hospital):
    questionnaire = make_questionnaire()
    draft = services.start_draft(questionnaire, acting_user=hospital.dave)
    assert draft.number == 2
    assert draft.definition == questionnaire.versions.get(number=1).definition
    assert services.start_draft(questionnaire, acting_user=hospital.dave).pk == draft.pk


def test_save_and_publish_is_one_step(hospital):
    questionnaire = make_questionnaire()
    version = services.save_and_publish(
        questionnaire, definition=basic_definition(), acting_user=hospital.dave
    )
    assert version.number == 2 and version.published_at is not None
    assert not questionnaire.versions.filter(published_at__isnull=True).exists()


def test_save_and_publish_saves_nothing_when_the_definition_is_invalid(hospital):
    questionnaire = make_questionnaire()
    with pytest.raises(DefinitionError):
        services.save_and_publish(questionnaire, definition={"questions": []}, acting_user=None)
    assert list(questionnaire.versions.values_list("number", flat=True)) == [1]


def test_discard_draft_keeps_the_only_version(hospital):
    questionnaire = make_questionnaire(published=False)
    assert services.discard_draft(questionnaire, acting_user=hospital.dave) is False
    services.publish(questionnaire.versions.get(), acting_user=hospital.dave)
    services.start_draft(questionnaire, acting_user=hospital.dave)
    assert services.discard_draft(questionnaire, acting_user=hospital.dave) is True
    assert list(questionnaire.versions.values_list("number", flat=True)) == [1]


def test_archived_questionnaire_cannot_be_edited_but_can_be_restored(hospital):
    questionnaire = make_questionnaire()
    services.archive(questionnaire, acting_user=hospital.dave)
    questionnaire.refresh_from_db()
    assert questionnaire.is_archived
    with pytest.raises(SurveyError, match="archived"):
        services.save_draft(questionnaire, definition=basic_definition(), acting_user=hospital.dave)
    services.restore(questionnaire, acting_user=hospital.dave)
    assert (
        services.save_draft(
            questionnaire, definition=basic_definition(), acting_user=hospital.dave
        ).number
        == 2
    )


def test_submit_response_cleans_scores_and_keeps_the_version(hospital):
    questionnaire = make_questionnaire()
    v1 = questionnaire.current_version
    patient = make_patient()
    response = services.submit_response(
        v1,
        patient=patient,
        answers={
            "chest_pain": "no",
            "pain_level": "9",
            "temperature": "36.6",
            "medication": "always",
        },
        channel=ResponseChannel.AGENT,
        acting_user=hospital.alice,
    )
    response.refresh_from_db()
    assert response.answers == {"chest_pain": False, "temperature": 36.6, "medication": "always"}
    assert response.score == Decimal("4.00")
    assert response.submitted_by == hospital.alice
    # Publishing v2 does not move or change the v1 response.
    services.save_and_publish(
        questionnaire,
        definition={
            "questions": [{"key": "ok", "type": "yes_no", "text": "一切都好吗？", "required": True}]
        },
        acting_user=hospital.dave,
    )
    response.refresh_from_db()
    assert response.version == v1
    assert response.version.definition["questions"][0]["key"] == "chest_pain"


def test_submit_response_reports_bad_answers_and_saves_nothing(hospital):
    version = make_questionnaire().current_version
    with pytest.raises(AnswerError) as info:
        services.submit_response(
            version,
            patient=make_patient(),
            answers={"chest_pain": "yes", "temperature": "45"},
            channel=ResponseChannel.IVR,
            acting_user=None,
        )
    assert set(info.value.errors) == {"pain_level", "temperature"}
    assert not version.responses.exists()


def test_submit_response_refuses_a_draft_version_and_unknown_channel(hospital):
    questionnaire = make_questionnaire(published=False)
    draft = questionnaire.versions.get()
    with pytest.raises(SurveyError, match="published"):
        make_response(draft, make_patient())
    services.publish(draft, acting_user=None)
    with pytest.raises(SurveyError, match="channel"):
        make_response(draft, make_patient(), channel="fax")


def test_archived_questionnaire_still_takes_responses_to_published_versions(hospital):
    questionnaire = make_questionnaire()
    services.archive(questionnaire, acting_user=None)
    response = make_response(latest_version(questionnaire), make_patient())
    assert response.pk is not None


def test_answers_from_post_reads_q_inputs():
    definition = {
        "questions": [
            {
                "key": "many",
                "type": "multiple",
                "text": "x",
                "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}],
            },
            {"key": "temp", "type": "number", "text": "y"},
            {"key": "note", "type": "text", "text": "z"},
        ]
    }
    data = QueryDict("q_many=a&q_many=b&q_temp=37.2&other=1")
    assert answers_from_post(definition, data) == {"many": ["a", "b"], "temp": "37.2", "note": None}
    assert answers_from_post(definition, {"q_many": "a"})["many"] == ["a"]


def test_fill_template_renders_inputs_errors_and_skip_logic(hospital):
    html = render_to_string(
        "surveys/_fill.html",
        {
            "definition": basic_definition(),
            "answers": {"chest_pain": "yes", "temperature": "45"},
            "errors": {"temperature": "Enter a number between 35 and 42."},
        },
    )
    assert 'name="q_chest_pain" id="id_q_chest_pain_0" value="yes" checked' in html
    assert 'id="question-pain_level" data-key="pain_level" data-type="rating"' in html
    assert "data-show-if=" in html
    assert 'id="id_q_pain_level_10" value="10"' in html  # 0..10 scale → 11 radios
    assert 'id="id_q_temperature" value="45"' in html and 'min="35" max="42"' in html
    assert (
        '<div class="error" id="error-temperature">Enter a number between 35 and 42.</div>' in html
    )
    assert 'type="radio" name="q_medication" id="id_q_medication_2" value="never"' in html
    assert html.count('class="req"') == 3
    assert "surveys/skip.js" in html


def test_fill_template_hides_questions_whose_condition_fails(hospital):
    html = render_to_string("surveys/_fill.html", {"definition": basic_definition(), "answers": {}})
    assert 'data-key="pain_level" data-type="rating" data-show-if=' in html
    wrapper = html.split('id="question-pain_level"')[1].split(">")[0]
    assert wrapper.rstrip().endswith("hidden")


def test_every_version_number_is_unique_per_questionnaire(hospital):
    questionnaire = make_questionnaire()
    for _ in range(3):
        services.save_and_publish(questionnaire, definition=basic_definition(), acting_user=None)
    numbers = list(
        QuestionnaireVersion.objects.filter(questionnaire=questionnaire).values_list(
            "number", flat=True
        )
    )
    assert sorted(numbers) == [1, 2, 3, 4]


def test_read_only_rendering_shows_conditional_questions_with_their_condition(hospital):
    html = render_to_string(
        "surveys/_fill.html", {"definition": basic_definition(), "readonly": True}
    )
    wrapper = html.split('id="question-pain_level"')[1].split(">")[0]
    assert "hidden" not in wrapper
    assert "Asked only if: 出院后是否有胸痛？ is Yes" in html
    assert html.count(" disabled") == 2 + 11 + 1 + 3  # every input is disabled
