"""The sample questionnaires of the demo hospital."""

from __future__ import annotations

from decimal import Decimal

import pytest

from careloop.core.testing import make_department
from careloop.surveys import schema
from careloop.surveys.models import Questionnaire
from careloop.surveys.samples import SAMPLES, ensure_sample_questionnaires

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.code)
def test_every_sample_definition_is_valid(sample):
    assert schema.validate_definition(sample.definition) == []


def test_samples_are_published_in_their_departments_and_idempotent():
    cardio = make_department("CARD", "心内科")
    first = ensure_sample_questionnaires()
    assert set(first) == {"pci", "tka", "diabetes", "postpartum", "discharge", "satisfaction"}
    assert first["pci"].department == cardio
    assert first["tka"].department is None  # no orthopaedics department in this database
    assert all(q.current_version is not None for q in first.values())
    again = ensure_sample_questionnaires()
    assert {code: q.pk for code, q in again.items()} == {code: q.pk for code, q in first.items()}
    assert Questionnaire.objects.count() == 6
    assert all(q.versions.count() == 1 for q in again.values())


def test_samples_use_skip_logic_and_scoring():
    with_skip = [s.code for s in SAMPLES if any("show_if" in q for q in s.definition["questions"])]
    with_score = [s.code for s in SAMPLES if schema.has_scoring(s.definition)]
    assert len(with_skip) >= 2 and len(with_score) >= 2
    assert {"pci", "satisfaction"} <= set(with_score)


def test_pci_answers_are_scored_and_flagged():
    pci = next(s.definition for s in SAMPLES if s.code == "pci")
    answers = schema.clean_answers(
        pci,
        {
            "chest_pain": "rest",
            "chest_pain_duration": "gt15",
            "puncture_site": "normal",
            "antiplatelet": "no",
            "missed_reason": "stopped",
            "bleeding": ["black_stool"],
            "temperature": "36.8",
            "recheck_booked": "no",
            "recheck_date": "2026-06-01",  # hidden: dropped
        },
    )
    assert "recheck_date" not in answers
    assert schema.score(pci, answers) == Decimal(17)
    assert schema.alerts(pci, answers) == [
        "chest_pain",
        "chest_pain_duration",
        "antiplatelet",
        "bleeding",
    ]


def test_satisfaction_total_is_the_sum_of_ratings_and_asks_why_when_unhappy():
    survey = next(s.definition for s in SAMPLES if s.code == "satisfaction")
    ratings = {"doctor": 5, "nurse": 4, "environment": 3, "cost": 2, "food": 1, "overall": 2}
    shown = [q["key"] for q in schema.visible_questions(survey, ratings)]
    assert "unhappy_reason" in shown
    answers = schema.clean_answers(survey, {**ratings, "recommend": "no"})
    assert schema.score(survey, answers) == Decimal(17)
    assert schema.keypad_choices(survey["questions"][0]) == {str(n): n for n in range(1, 6)}
