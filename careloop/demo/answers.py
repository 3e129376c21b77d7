"""Plausible answers to any questionnaire definition, for the demo's follow-up history.

Most patients recover well: answers avoid the definition's abnormal values (alert options,
``alert_above`` / ``alert_below``, the alerting yes/no side) unless ``abnormal`` is asked for, in
which case one question that can raise an alert gets an abnormal answer.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from careloop.surveys import schema

_TEXT_ANSWERS = ("无特殊不适", "恢复良好，无其他问题", "感谢医生护士的照顾", "无")


def _number(rng: random.Random, question: dict[str, Any], abnormal: bool) -> int | float:
    low = question.get("min")
    high = question.get("max")
    below = question.get("alert_below")
    above = question.get("alert_above")
    if abnormal and above is not None:
        start, end = float(above), float(high if high is not None else above * 1.15 + 1)
        start = min(start + (end - start) * 0.1, end)
    elif abnormal and below is not None:
        start, end = float(low if low is not None else below * 0.8), float(below)
        end = max(end - (end - start) * 0.1, start)
    else:
        start = float(below if below is not None else low if low is not None else 0)
        end = float(above if above is not None else high if high is not None else start + 10)
        if below is None and above is None and high is not None:
            # No normal range given: stay in the lower-middle of the allowed range.
            end = start + (end - start) * 0.5
    value = rng.uniform(start, end)
    if question.get("integer") or question.get("type") == "rating":
        value = round(value)
        if low is not None:
            value = max(value, int(low))
        if high is not None:
            value = min(value, int(high))
        return int(value)
    return round(value, 1)


def _rating(rng: random.Random, question: dict[str, Any], abnormal: bool) -> int:
    low, high = schema.scale_range(question)
    below, above = question.get("alert_below"), question.get("alert_above")
    if above is not None:  # e.g. a pain score: low is good
        if abnormal:
            return rng.randint(min(int(above) + 1, high), high)
        return rng.randint(low, max(low, min(int(above), low + (high - low) // 3)))
    if below is not None and abnormal:
        return rng.randint(low, max(low, int(below) - 1))
    # Satisfaction and similar: mostly the top of the scale.
    top = [high, high, high, high - 1, high - 1, max(low, high - 2)]
    value = rng.choice(top)
    if below is not None:
        value = max(value, int(below))
    return value


def _choice(rng: random.Random, question: dict[str, Any], abnormal: bool) -> Any:
    options = question.get("options") or []
    alerting = [o["value"] for o in options if o.get("alert")]
    normal = [o["value"] for o in options if not o.get("alert")]
    if abnormal and alerting:
        picked = [rng.choice(alerting)]
    else:
        pool = normal or [o["value"] for o in options]
        # The first options are usually the common answers ("好", "按时服用").
        weights = [max(1, 8 - 3 * i) for i in range(len(pool))]
        picked = [rng.choices(pool, weights=weights)[0]]
    if question.get("type") == "multiple":
        return picked
    return picked[0]


def _yes_no(rng: random.Random, question: dict[str, Any], abnormal: bool) -> bool:
    alert = question.get("alert")
    if alert == "yes":
        return abnormal
    if alert == "no":
        return not abnormal
    return rng.random() < 0.75


def can_alert(question: dict[str, Any]) -> bool:
    qtype = question.get("type")
    if qtype in ("single", "multiple"):
        return any(o.get("alert") for o in question.get("options") or [])
    if qtype == "yes_no":
        return question.get("alert") in ("yes", "no")
    if qtype in ("number", "rating"):
        return question.get("alert_above") is not None or question.get("alert_below") is not None
    return False


def answer(
    rng: random.Random,
    definition: dict[str, Any],
    *,
    on: dt.date,
    abnormal: bool = False,
) -> dict[str, Any]:
    """Answers to the visible questions of ``definition`` (skip logic applied, in order)."""
    questions = schema.questions(definition)
    candidates = [q["key"] for q in questions if can_alert(q)]
    abnormal_key = rng.choice(candidates) if abnormal and candidates else None
    answers: dict[str, Any] = {}
    for question in questions:
        key = question["key"]
        visible = {q["key"] for q in schema.visible_questions(definition, answers)}
        if key not in visible:
            continue
        bad = key == abnormal_key
        qtype = question.get("type")
        if qtype in ("single", "multiple"):
            answers[key] = _choice(rng, question, bad)
        elif qtype == "yes_no":
            answers[key] = _yes_no(rng, question, bad)
        elif qtype == "number":
            answers[key] = _number(rng, question, bad)
        elif qtype == "rating":
            answers[key] = _rating(rng, question, bad)
        elif qtype == "date":
            answers[key] = on.isoformat()
        elif qtype == "text":
            if question.get("required") or rng.random() < 0.2:
                answers[key] = rng.choice(_TEXT_ANSWERS)
    return answers
