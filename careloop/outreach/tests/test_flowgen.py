"""Questionnaires as automated-call flows: valid for the engine, skip logic, answers back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from careloop.engine.flow import validate_flow
from careloop.outreach import flowgen
from careloop.surveys import schema
from careloop.surveys.models import QuestionnaireVersion
from careloop.surveys.samples import SAMPLES, ensure_sample_questionnaires

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(hospital) -> dict[str, QuestionnaireVersion]:
    found = ensure_sample_questionnaires()
    return {code: q.versions.get() for code, q in found.items()}


def _flow(version: QuestionnaireVersion) -> dict[str, Any]:
    return flowgen.build_flow(version, hospital="示范医院", department="心内科")


def test_every_sample_questionnaire_makes_a_valid_flow(versions) -> None:
    assert len(versions) == len(SAMPLES)
    for code, version in versions.items():
        flow = _flow(version)
        assert validate_flow(flow) == [], code
        nodes = flow["nodes"]
        assert (
            "本次通话将被录音" in nodes["greet"]["say"]
            and "示范医院心内科" in nodes["greet"]["say"]
        )
        consent = nodes["consent"]
        assert consent["say"].startswith("{{patient_name}}您好")
        for piece in ("请按1", "不方便请按2", "转人工服务请按0", "自动随访电话请按9"):
            assert piece in consent["say"]
        assert set(consent["options"]) == {"1", "2", "0", "9"}
        for name, node in nodes.items():
            assert "flush" not in node, name
            if node["type"] in ("menu", "gather"):
                assert node["barge_in"] is True, name
            if node["type"] == "menu" and name != "consent":
                assert node["options"]["0"]["next"] == "to_nurse", name
        asked = {q["key"] for q in flowgen.asked_questions(version.definition)}
        for question in schema.questions(version.definition):
            if question["type"] in ("text", "date"):
                assert question["key"] not in asked, (code, question["key"])
                assert f"q_{question['key']}" not in nodes
        assert nodes["route"]["type"] == "route" and nodes["route"]["on_timeout"] == "nurse_busy"


def test_single_choice_is_a_menu_with_the_option_keys(versions) -> None:
    flow = _flow(versions["pci"])
    menu = flow["nodes"]["q_chest_pain"]
    assert menu["type"] == "menu" and menu["var"] == "a_chest_pain"
    assert "没有请按1" in menu["say"] and "休息时也有请按3" in menu["say"]
    assert set(menu["options"]) == {"1", "2", "3", "0"}
    yes_no = flow["nodes"]["q_antiplatelet"]
    assert "每天按时服用请按1" in yes_no["say"] and "没有按时服用请按2" in yes_no["say"]


def test_numbers_are_gathered_with_a_spoken_example(versions) -> None:
    flow = _flow(versions["pci"])
    gather = flow["nodes"]["q_temperature"]
    assert gather["type"] == "gather" and gather["terminators"] == "#"
    assert "例如三十六点五度，请按3、6、5，以井号键结束" in gather["say"]
    assert flow["nodes"]["q_sbp"]["say"].endswith("以井号键结束。")
    assert "毫米汞柱" in flow["nodes"]["q_sbp"]["say"]


def test_skip_logic_becomes_switches_on_the_source_keys(versions) -> None:
    pci = _flow(versions["pci"])["nodes"]
    # chest_pain_duration is shown when chest_pain is exertion (2) or rest (3)
    switch = pci["if_chest_pain_duration"]
    assert switch == {
        "type": "switch",
        "value": "{{a_chest_pain}}",
        "cases": {"2": "q_chest_pain_duration", "3": "q_chest_pain_duration"},
        "default": "q_puncture_site",
    }
    assert pci["q_chest_pain"]["options"]["1"] == "if_chest_pain_duration"
    # missed_reason only when antiplatelet is "no" (2)
    assert pci["if_missed_reason"]["cases"] == {"2": "q_missed_reason"}
    tka = _flow(versions["tka"])["nodes"]
    # rehab_barriers when rehab is not "daily": every other key
    rehab = versions["tka"].definition["questions"]
    [question] = [q for q in rehab if q["key"] == "rehab"]
    daily = next(
        schema.option_dtmf(question, i)
        for i, o in enumerate(question["options"])
        if o["value"] == "daily"
    )
    cases = tka["if_rehab_barriers"]["cases"]
    assert daily not in cases and len(cases) == len(question["options"]) - 1
    # a question on a text answer is never asked (left to the nurse)
    satisfaction = _flow(versions["satisfaction"])["nodes"]
    assert "q_unhappy_reason" not in satisfaction


def test_a_condition_the_flow_cannot_decide_leaves_the_question_to_the_nurse() -> None:
    definition = {
        "questions": [
            {"key": "temp", "type": "number", "text": "体温？", "min": 35, "max": 42},
            {
                "key": "chills",
                "type": "yes_no",
                "text": "发冷吗？",
                "show_if": {"key": "temp", "op": "gt", "value": 38},
            },
        ]
    }
    assert [q["key"] for q in flowgen.asked_questions(definition)] == ["temp"]


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("375", Decimal("37.5")),
        ("37", Decimal(37)),
        ("37*5", Decimal("37.5")),
        ("386", Decimal("38.6")),
    ],
)
def test_keyed_temperatures(digits: str, expected: Decimal) -> None:
    question = {"key": "t", "type": "number", "min": 35, "max": 42, "unit": "°C"}
    assert flowgen.keyed_number(question, digits) == expected


def test_keyed_integers_stay_whole() -> None:
    assert flowgen.keyed_number({"type": "number", "integer": True, "max": 260}, "120") == 120
    assert flowgen.keyed_number({"type": "number", "max": 260}, "1a") is None


def test_flow_variables_become_the_answers_record_outcome_takes(versions) -> None:
    version = versions["pci"]
    variables = {
        "a_chest_pain": "2",
        "a_chest_pain_duration": "1",
        "a_puncture_site": "1",
        "a_antiplatelet": "2",
        "a_missed_reason": "1",
        "a_bleeding": "31",
        "a_temperature": "386",
        "a_sbp": "135",
        "a_recheck_booked": "1",
        "consent": "1",
        "outreach_result": "completed",
    }
    answers, unanswered = flowgen.answers_from_variables(version, variables)
    assert answers == {
        "chest_pain": "exertion",
        "chest_pain_duration": "lt5",
        "puncture_site": "normal",
        "antiplatelet": False,
        "missed_reason": "forgot",
        "bleeding": ["black_stool", "gums"],
        "temperature": 38.6,
        "sbp": 135,
        "recheck_booked": True,
    }
    assert unanswered == ["dbp"]
    cleaned = schema.clean_answers(version.definition, answers)
    assert cleaned["bleeding"] == ["gums", "black_stool"] and cleaned["temperature"] == 38.6
    none_ticked, _missing = flowgen.answers_from_variables(version, {"a_bleeding": "0"})
    assert none_ticked["bleeding"] == []
    assert "体温" in flowgen.describe_answers(version, answers)
