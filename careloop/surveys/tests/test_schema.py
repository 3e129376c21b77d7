"""The definition format: validation, skip logic, cleaning answers, scoring, alerts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from careloop.surveys import schema
from careloop.surveys.schema import AnswerError
from careloop.surveys.tests.factories import basic_definition


def q(key: str, qtype: str, **fields):
    return {"key": key, "type": qtype, "text": f"问题 {key}", **fields}


OPTIONS = [{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}]

ALL_TYPES = {
    "questions": [
        q("pick", "single", required=True, options=OPTIONS),
        q("many", "multiple", options=[*OPTIONS, {"value": "c", "label": "丙"}]),
        q("temp", "number", min=35, max=42, unit="°C"),
        q("count", "number", min=0, integer=True),
        q("note", "text", max_length=10),
        q("visit", "date"),
        q("stars", "rating", scale={"min": 1, "max": 5}),
        q("fever", "yes_no"),
    ]
}


def errors_of(definition, raw):
    with pytest.raises(AnswerError) as info:
        schema.clean_answers(definition, raw)
    return info.value.errors


# --- validate_definition --------------------------------------------------------------------------


def test_definition_with_every_question_type_is_valid():
    assert schema.validate_definition(ALL_TYPES) == []
    assert schema.validate_definition(basic_definition()) == []


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        (None, "must be an object"),
        ({"questions": []}, "at least one question"),
        ({"questions": "x"}, "list of questions"),
        ({"questions": [q("a", "single", options=OPTIONS)], "extra": 1}, "Unknown top-level"),
        ({"questions": [q("Bad Key", "text")]}, "lowercase letter"),
        ({"questions": [q("a", "text"), q("a", "text")]}, "used twice"),
        ({"questions": [q("a", "essay")]}, "Unknown question type"),
        ({"questions": [{"key": "a", "type": "text", "text": " "}]}, "needs a text"),
        ({"questions": [q("a", "text", required="yes")]}, "required must be true or false"),
        ({"questions": [q("a", "single", options=OPTIONS[:1])]}, "at least two options"),
        (
            {
                "questions": [
                    q("a", "single", options=[{"value": str(i), "label": "x"} for i in range(11)])
                ]
            },
            "at most 10 options",
        ),
        ({"questions": [q("a", "single", options=[OPTIONS[0], OPTIONS[0]])]}, "used twice"),
        ({"questions": [q("a", "single", options=[OPTIONS[0], {"value": "b"}])]}, "needs a label"),
        (
            {"questions": [q("a", "single", options=[OPTIONS[0], {**OPTIONS[1], "score": "3"}])]},
            "score of option 2 must be a number",
        ),
        (
            {"questions": [q("a", "single", options=[{**OPTIONS[0], "dtmf": "2"}, OPTIONS[1]])]},
            "Keypad digit 2 is used by two options",
        ),
        (
            {"questions": [q("a", "single", options=[{**OPTIONS[0], "dtmf": "12"}, OPTIONS[1]])]},
            "must be one digit",
        ),
        (
            {"questions": [q("a", "single", options=[{**OPTIONS[0], "colour": 1}, OPTIONS[1]])]},
            "unknown fields",
        ),
        ({"questions": [q("a", "text", options=OPTIONS)]}, "not used by a text question"),
        ({"questions": [q("a", "number", min=5, max=1)]}, "must not be greater"),
        ({"questions": [q("a", "number", min="5")]}, "must be a number"),
        ({"questions": [q("a", "rating")]}, "needs a scale"),
        ({"questions": [q("a", "rating", scale={"min": 1, "max": 11})]}, "within 0 to 10"),
        ({"questions": [q("a", "rating", scale={"min": 1.5, "max": 5})]}, "whole numbers"),
        ({"questions": [q("a", "yes_no", score={"yes": 1, "maybe": 0})]}, "yes and no"),
        ({"questions": [q("a", "yes_no", alert="sometimes")]}, "alert must be yes or no"),
        ({"questions": [q("a", "text", max_length=0)]}, "max_length"),
    ],
)
def test_bad_definitions_are_reported_with_a_reason(definition, fragment):
    errors = schema.validate_definition(definition)
    assert errors, "expected an error"
    assert any(fragment in error for error in errors), errors


@pytest.mark.parametrize(
    ("show_if", "fragment"),
    [
        ({"key": "later", "op": "eq", "value": "a"}, "earlier question"),
        ({"key": "pick", "op": "eq"}, "exactly key, op and value"),
        ({"key": "pick", "op": "like", "value": "a"}, "Unknown skip-logic operator"),
        ({"key": "pick", "op": "gt", "value": "a"}, "number, rating and date"),
        ({"key": "pick", "op": "eq", "value": "z"}, "not an option of pick"),
        ({"key": "pick", "op": "in", "value": []}, "non-empty list"),
        ({"key": "fever", "op": "eq", "value": "yes"}, "true or false"),
        ({"key": "temp", "op": "gte", "value": "high"}, "must be a number"),
        ({"key": "visit", "op": "lt", "value": "tomorrow"}, "must be a date"),
    ],
)
def test_bad_skip_logic_is_reported(show_if, fragment):
    definition = {
        "questions": [
            q("pick", "single", options=OPTIONS),
            q("fever", "yes_no"),
            q("temp", "number"),
            q("visit", "date"),
            q("target", "text", show_if=show_if),
            q("later", "text"),
        ]
    }
    errors = schema.validate_definition(definition)
    assert any(fragment in error for error in errors), errors
    assert all(error.startswith("Question 5 (target)") for error in errors)


def test_definition_issues_point_at_the_question():
    definition = {"questions": [q("ok", "text"), q("bad", "number", min=3, max=1)]}
    [issue] = schema.definition_issues(definition)
    assert (issue.index, issue.key) == (1, "bad")


def test_normalize_fills_in_keypad_digits_and_required():
    definition = {
        "questions": [
            q("pick", "single", options=[*OPTIONS, {"value": "c", "label": "丙", "dtmf": "9"}])
        ]
    }
    normalized = schema.normalize_definition(definition)
    assert [o["dtmf"] for o in normalized["questions"][0]["options"]] == ["1", "2", "9"]
    assert normalized["questions"][0]["required"] is False
    assert "dtmf" not in definition["questions"][0]["options"][0]  # the input is not modified


def test_keypad_choices_per_type():
    assert schema.keypad_choices(q("pick", "single", options=OPTIONS)) == {"1": "a", "2": "b"}
    assert schema.keypad_choices(q("fever", "yes_no")) == {"1": True, "2": False}
    assert schema.keypad_choices(q("stars", "rating", scale={"min": 1, "max": 5})) == {
        str(n): n for n in range(1, 6)
    }
    assert schema.keypad_choices(q("pain", "rating", scale={"min": 0, "max": 10})) is None
    assert schema.keypad_choices(q("temp", "number")) is None


# --- clean_answers --------------------------------------------------------------------------------


def test_clean_answers_types_every_answer():
    cleaned = schema.clean_answers(
        ALL_TYPES,
        {
            "pick": "a",
            "many": ["c", "a"],
            "temp": "37.5",
            "count": "２",
            "note": "  还好 ",
            "visit": "2026/3/5",
            "stars": "4",
            "fever": "no",
        },
    )
    assert cleaned == {
        "pick": "a",
        "many": ["a", "c"],
        "temp": 37.5,
        "count": 2,
        "note": "还好",
        "visit": "2026-03-05",
        "stars": 4,
        "fever": False,
    }


def test_clean_answers_is_idempotent():
    raw = {"pick": "b", "many": ["b"], "temp": 36, "visit": "2026-01-31", "stars": 5, "fever": True}
    once = schema.clean_answers(ALL_TYPES, raw)
    assert schema.clean_answers(ALL_TYPES, once) == once


def test_required_visible_question_must_be_answered():
    assert errors_of(ALL_TYPES, {"pick": ""}) == {"pick": "This question is required."}
    assert errors_of(ALL_TYPES, {}) == {"pick": "This question is required."}


def test_optional_questions_may_be_left_empty():
    assert schema.clean_answers(ALL_TYPES, {"pick": "a", "many": [], "temp": None}) == {"pick": "a"}


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"temp": "34.9"}, "temp", "between 35 and 42"),
        ({"temp": "42.1"}, "temp", "between 35 and 42"),
        ({"temp": "热"}, "temp", "Enter a number"),
        ({"temp": "nan"}, "temp", "Enter a number"),
        ({"count": "1.5"}, "count", "whole number"),
        ({"count": "-1"}, "count", "at least 0"),
        ({"pick": "z"}, "pick", "not one of the options"),
        ({"pick": ["a", "b"]}, "pick", "only one"),
        ({"many": ["a", "x"]}, "many", "not one of the options"),
        ({"note": "一二三四五六七八九十十"}, "note", "within 10 characters"),
        ({"visit": "2026-02-30"}, "visit", "valid date"),
        ({"stars": "6"}, "stars", "from 1 to 5"),
        ({"stars": "2.5"}, "stars", "from 1 to 5"),
        ({"fever": "maybe"}, "fever", "yes or no"),
        ({"temp": ["36", "37"]}, "temp", "one answer"),
        ({"nonsense": "1"}, "nonsense", "no such question"),
    ],
)
def test_bad_answers_are_reported_by_question(raw, key, fragment):
    errors = errors_of(ALL_TYPES, {"pick": "a", **raw})
    assert list(errors) == [key]
    assert fragment in errors[key]


def test_range_bounds_are_inclusive():
    cleaned = schema.clean_answers(ALL_TYPES, {"pick": "a", "temp": "35", "count": "0"})
    assert cleaned["temp"] == 35 and cleaned["count"] == 0


def test_answer_error_lists_every_problem_at_once():
    errors = errors_of(ALL_TYPES, {"pick": "", "temp": "50", "stars": "9"})
    assert set(errors) == {"pick", "temp", "stars"}


# --- skip logic -----------------------------------------------------------------------------------


def test_follow_up_question_is_hidden_until_its_condition_holds():
    definition = basic_definition()
    keys = [x["key"] for x in schema.visible_questions(definition, {})]
    assert keys == ["chest_pain", "temperature", "medication"]
    keys = [x["key"] for x in schema.visible_questions(definition, {"chest_pain": "yes"})]
    assert keys == ["chest_pain", "pain_level", "temperature", "medication"]
    keys = [x["key"] for x in schema.visible_questions(definition, {"chest_pain": True})]
    assert "pain_level" in keys


def test_hidden_required_question_is_not_enforced_and_its_answer_dropped():
    definition = basic_definition()
    cleaned = schema.clean_answers(
        definition, {"chest_pain": "no", "pain_level": "8", "temperature": "36.5"}
    )
    assert cleaned == {"chest_pain": False, "temperature": 36.5}


def test_visible_required_follow_up_question_is_enforced():
    errors = errors_of(basic_definition(), {"chest_pain": "yes", "temperature": "36.5"})
    assert errors == {"pain_level": "This question is required."}


def test_a_question_hidden_by_skip_logic_hides_its_own_dependants():
    definition = {
        "questions": [
            q("smoker", "yes_no"),
            q("per_day", "number", show_if={"key": "smoker", "op": "eq", "value": True}),
            q("quit", "yes_no", show_if={"key": "per_day", "op": "gte", "value": 10}),
        ]
    }
    visible = lambda answers: [x["key"] for x in schema.visible_questions(definition, answers)]  # noqa: E731
    assert visible({"smoker": "yes", "per_day": "20"}) == ["smoker", "per_day", "quit"]
    assert visible({"smoker": "yes", "per_day": "5"}) == ["smoker", "per_day"]
    # per_day is hidden once smoker is "no", so its stale answer cannot show "quit".
    assert visible({"smoker": "no", "per_day": "20"}) == ["smoker"]
    assert schema.clean_answers(definition, {"smoker": "no", "per_day": "20", "quit": "yes"}) == {
        "smoker": False
    }


@pytest.mark.parametrize(
    ("source", "op", "value", "answer", "shown"),
    [
        (q("s", "single", options=OPTIONS), "eq", "a", "a", True),
        (q("s", "single", options=OPTIONS), "ne", "a", "a", False),
        (q("s", "single", options=OPTIONS), "ne", "a", "b", True),
        (q("s", "single", options=OPTIONS), "in", ["a", "b"], "b", True),
        (q("s", "multiple", options=OPTIONS), "eq", "a", ["a", "b"], True),
        (q("s", "multiple", options=OPTIONS), "ne", "a", ["b"], True),
        (q("s", "multiple", options=OPTIONS), "ne", "a", ["a"], False),
        (q("s", "multiple", options=OPTIONS), "in", ["b"], ["a"], False),
        (q("s", "number"), "gt", 37.3, "37.5", True),
        (q("s", "number"), "gt", 37.5, "37.5", False),
        (q("s", "number"), "gte", 37.5, "37.5", True),
        (q("s", "number"), "lt", 4, "3.9", True),
        (q("s", "number"), "lte", 4, "4.1", False),
        (q("s", "number"), "eq", 0, "0", True),
        (q("s", "number"), "in", [1, 2], "2", True),
        (q("s", "rating", scale={"min": 0, "max": 10}), "gte", 7, "7", True),
        (q("s", "rating", scale={"min": 0, "max": 10}), "gte", 7, 6, False),
        (q("s", "date"), "lt", "2026-01-01", "2025-12-31", True),
        (q("s", "date"), "lt", "2026-01-01", "2026-01-01", False),
        (q("s", "yes_no"), "eq", False, "no", True),
        (q("s", "yes_no"), "ne", True, False, True),
        (q("s", "text"), "eq", "好", "好", True),
        (q("s", "number"), "gt", 1, "", False),  # unanswered never satisfies a condition
        (q("s", "number"), "ne", 1, None, False),
    ],
)
def test_skip_logic_operators(source, op, value, answer, shown):
    definition = {
        "questions": [source, q("t", "text", show_if={"key": "s", "op": op, "value": value})]
    }
    assert schema.validate_definition(definition) == []
    keys = [x["key"] for x in schema.visible_questions(definition, {"s": answer})]
    assert ("t" in keys) is shown


# --- scoring and alerts ---------------------------------------------------------------------------


def test_score_sums_option_yes_no_and_rating_points_of_visible_answers():
    definition = {
        "questions": [
            q("a", "single", options=[{**OPTIONS[0], "score": 3}, {**OPTIONS[1], "score": 1}]),
            q("b", "multiple", options=[{**OPTIONS[0], "score": 1.5}, {**OPTIONS[1], "score": 2}]),
            q("c", "yes_no", score={"yes": 5, "no": 0}),
            q("d", "rating", scale={"min": 1, "max": 5}, scored=True),
            q("e", "rating", scale={"min": 1, "max": 5}),  # not scored
            q(
                "f",
                "yes_no",
                score={"yes": 10, "no": 0},
                show_if={"key": "c", "op": "eq", "value": False},
            ),
        ]
    }
    answers = {"a": "a", "b": ["a", "b"], "c": True, "d": 4, "e": 5, "f": True}
    assert schema.score(definition, answers) == Decimal("15.5")  # f is hidden: not counted
    assert schema.score(definition, {}) == Decimal(0)


def test_score_is_none_without_scoring():
    assert schema.score(ALL_TYPES, {"pick": "a"}) is None


def test_basic_definition_score_and_alerts():
    definition = basic_definition()
    answers = schema.clean_answers(
        definition,
        {"chest_pain": "yes", "pain_level": "6", "temperature": "38.2", "medication": "never"},
    )
    assert schema.score(definition, answers) == Decimal(0)
    assert schema.alerts(definition, answers) == ["chest_pain", "temperature", "medication"]
    healthy = {"chest_pain": False, "temperature": 36.6, "medication": "always"}
    assert schema.score(definition, healthy) == Decimal(4)
    assert schema.alerts(definition, healthy) == []
