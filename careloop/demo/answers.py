"""Plausible answers to a questionnaire definition, for the demo's follow-up history.

Most patients recover well: answers stay clear of the definition's abnormal values (alert
options, ``alert_above`` / ``alert_below``, the alerting side of a yes/no question) unless
``abnormal`` is asked for, in which case one question that can raise an alert gets an abnormal
answer. Measurements fall in the ranges seen in real follow-up calls (``TYPICAL``), whatever the
question's allowed range is.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from careloop.surveys import schema

# Usual values of common measurements, by question key and then by unit.
TYPICAL: dict[str, tuple[float, float]] = {
    "temperature": (36.2, 37.1),
    "sbp": (108, 146),
    "dbp": (62, 90),
    "fasting_glucose": (5.2, 8.4),
    "postprandial_glucose": (7.0, 12.6),
    "baby_weight": (3.1, 5.0),
    "flexion": (92, 125),
    "weight": (48, 82),
    "heart_rate": (60, 92),
}
TYPICAL_BY_UNIT: dict[str, tuple[float, float]] = {
    "°C": (36.2, 37.1),
    "℃": (36.2, 37.1),
    "mmol/L": (5.2, 8.4),
    "次/分": (60, 92),
    "kg": (48, 82),
}
# Yes/no questions asking "is there something wrong?" are answered "no" by most patients.
_PROBLEM_LABELS = {"有", "发黄", "是"}
_SYMPTOMS = ("偶有头晕", "睡眠不太好", "伤口有点痒", "食欲一般", "有点乏力", "偶尔咳嗽")
_REMARKS = ("无", "没有了，谢谢", "希望复查挂号能方便一些", "护士很耐心，谢谢", "恢复得不错")


def _bounds(question: dict[str, Any], abnormal: bool) -> tuple[float, float]:
    low, high = question.get("min"), question.get("max")
    below, above = question.get("alert_below"), question.get("alert_above")
    if abnormal and above is not None:
        top = float(high) if high is not None else float(above) * 1.2
        return float(above) + (top - float(above)) * 0.05, float(above) + (top - float(above)) * 0.4
    if abnormal and below is not None:
        bottom = float(low) if low is not None else float(below) * 0.7
        return bottom + (float(below) - bottom) * 0.5, float(below) - (float(below) - bottom) * 0.05
    typical = TYPICAL.get(question["key"]) or TYPICAL_BY_UNIT.get(question.get("unit") or "")
    if typical is None:
        start = float(below if below is not None else low if low is not None else 0)
        end = float(above if above is not None else high if high is not None else start + 10)
        typical = (start, start + (end - start) * 0.4)
    start, end = typical
    # Inside the normal range and the allowed range, whatever the usual values say.
    for limit in (below, low):
        if limit is not None:
            start, end = max(start, float(limit)), max(end, float(limit))
    for limit in (above, high):
        if limit is not None:
            start, end = min(start, float(limit)), min(end, float(limit))
    return start, end


def _number(rng: random.Random, question: dict[str, Any], abnormal: bool) -> int | float:
    start, end = _bounds(question, abnormal)
    value = rng.uniform(start, end)
    if question.get("integer"):
        return round(value)
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
    # Satisfaction and the like: mostly the top of the scale.
    value = rng.choice([high, high, high, high - 1, high - 1, max(low, high - 2)])
    return max(value, int(below)) if below is not None else value


def _choice(rng: random.Random, question: dict[str, Any], abnormal: bool) -> Any:
    options = question.get("options") or []
    alerting = [o["value"] for o in options if o.get("alert")]
    normal = [o["value"] for o in options if not o.get("alert")]
    multiple = question.get("type") == "multiple"
    if abnormal and alerting:
        picked = rng.choice(alerting)
    elif multiple and not question.get("required") and rng.random() < 0.85:
        return []  # "any of these?" — usually none
    else:
        pool = normal or [o["value"] for o in options]
        # The first options are the common answers ("没有", "按时服用", "很好").
        weights = [max(1, 12 - 5 * i) for i in range(len(pool))]
        picked = rng.choices(pool, weights=weights)[0]
    return [picked] if multiple else picked


def _yes_no(rng: random.Random, question: dict[str, Any], abnormal: bool) -> bool:
    alert = question.get("alert")
    if alert == "yes":
        return abnormal
    if alert == "no":
        return not abnormal
    labels = question.get("labels") or {}
    if labels.get("yes") in _PROBLEM_LABELS:
        return rng.random() < 0.12
    return rng.random() < 0.8


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
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answers to the visible questions of ``definition``, in order, skip logic applied.

    ``known`` holds answers that follow from the patient's record (e.g. how the baby was born).
    """
    known = known or {}
    questions = schema.questions(definition)
    # Only questions shown to everybody, so the abnormal answer is always asked.
    candidates = [q["key"] for q in questions if can_alert(q) and not q.get("show_if")]
    abnormal_key = rng.choice(candidates) if abnormal and candidates else None
    answers: dict[str, Any] = {}
    for question in questions:
        key = question["key"]
        if key not in {q["key"] for q in schema.visible_questions(definition, answers)}:
            continue
        if key in known:
            answers[key] = known[key]
            continue
        bad = key == abnormal_key
        qtype = question.get("type")
        optional = not question.get("required")
        if qtype in ("single", "multiple"):
            answers[key] = _choice(rng, question, bad)
        elif qtype == "yes_no":
            answers[key] = _yes_no(rng, question, bad)
        elif qtype == "number":
            if key == "dbp" and "sbp" not in answers:
                continue  # a blood pressure is told as a pair or not at all
            if bad or not optional or question.get("show_if") or rng.random() < 0.8:
                answers[key] = _number(rng, question, bad)
        elif qtype == "rating":
            answers[key] = _rating(rng, question, bad)
        elif qtype == "date":
            answers[key] = (on + dt.timedelta(days=rng.randint(3, 28))).isoformat()
        elif qtype == "text":
            if question.get("show_if"):
                answers[key] = rng.choice(_SYMPTOMS)
            elif not optional or rng.random() < 0.15:
                answers[key] = rng.choice(_REMARKS)
    return answers
