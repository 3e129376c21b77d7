"""Template helpers turning a definition plus answers into what surveys/_fill.html and
surveys/_answers.html render (checked options, input values, visibility, display text)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import template
from django.utils.translation import gettext as _

from careloop.surveys import schema
from careloop.surveys.choices import QuestionType
from careloop.surveys.forms import FIELD_PREFIX

register = template.Library()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        return str(int(number)) if number == number.to_integral_value() else str(value)
    return str(value)


def _picked(value: Any) -> set[str]:
    if value is None:
        return set()
    items = value if isinstance(value, list | tuple | set) else [value]
    return {_as_text(item).strip() for item in items}


def _yes_no_labels(question: Mapping[str, Any]) -> dict[str, str]:
    labels = question.get("labels") or {}
    return {"yes": labels.get("yes") or _("Yes"), "no": labels.get("no") or _("No")}


def _choices(question: Mapping[str, Any], value: Any) -> list[dict[str, Any]]:
    """The radio / checkbox items of a choice, rating or yes/no question."""
    picked = _picked(value)
    qtype = question["type"]
    if qtype in schema.CHOICE_TYPES:
        items = [
            {
                "value": option["value"],
                "label": option["label"],
                "score": option.get("score"),
                "dtmf": schema.option_dtmf(question, i),
            }
            for i, option in enumerate(question["options"])
        ]
    elif qtype == QuestionType.RATING:
        low, high = schema.scale_range(question)
        items = [{"value": str(n), "label": str(n)} for n in range(low, high + 1)]
    elif qtype == QuestionType.YES_NO:
        labels = _yes_no_labels(question)
        items = [{"value": "yes", "label": labels["yes"]}, {"value": "no", "label": labels["no"]}]
    else:
        return []
    for i, item in enumerate(items):
        item["id"] = f"id_{FIELD_PREFIX}{question['key']}_{i}"
        item["checked"] = item["value"] in picked
    return items


def _op_labels() -> dict[str, str]:
    return {
        "eq": _("is"),
        "ne": _("is not"),
        "gt": _("is greater than"),
        "gte": _("is at least"),
        "lt": _("is less than"),
        "lte": _("is at most"),
        "in": _("is one of"),
    }


def condition_text(definition: Mapping[str, Any] | None, question: Mapping[str, Any]) -> str:
    """The skip-logic condition in words, e.g. "出院后是否有胸痛？ is 是"."""
    cond = question.get("show_if")
    if not cond:
        return ""
    source = schema.question_map(definition).get(cond.get("key"))
    if source is None:
        return ""
    values = cond["value"] if isinstance(cond.get("value"), list) else [cond.get("value")]
    shown = " / ".join(display_answer(source, value) for value in values)
    return _("%(question)s %(op)s %(value)s") % {
        "question": source.get("text", ""),
        "op": _op_labels().get(cond.get("op"), cond.get("op")),
        "value": shown,
    }


@register.simple_tag
def survey_questions(
    definition: Mapping[str, Any] | None,
    answers: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One dict per question with everything _fill.html needs to render its input."""
    answers = answers or {}
    errors = errors or {}
    shown = {q["key"] for q in schema.visible_questions(definition or {}, answers)}
    items = []
    for question in schema.questions(definition):
        key = question.get("key", "")
        value = answers.get(key)
        scale = question.get("scale") or {}
        items.append(
            {
                "q": question,
                "key": key,
                "type": question.get("type"),
                "name": FIELD_PREFIX + key,
                "id": f"id_{FIELD_PREFIX}{key}",
                "value": "" if isinstance(value, list) else _as_text(value),
                "choices": _choices(question, value),
                "error": errors.get(key, ""),
                "visible": key in shown,
                "condition": condition_text(definition, question),
                "show_if_json": json.dumps(question["show_if"], ensure_ascii=False)
                if question.get("show_if")
                else "",
                "min_label": scale.get("min_label", ""),
                "max_label": scale.get("max_label", ""),
            }
        )
    return items


def display_answer(question: Mapping[str, Any], value: Any) -> str:
    """An answer as text for a person: option labels, yes/no labels, numbers with their unit."""
    if value is None or value == [] or value == "":
        return ""
    qtype = question.get("type")
    if qtype in schema.CHOICE_TYPES:
        labels = {o["value"]: o["label"] for o in question.get("options", [])}
        items = value if isinstance(value, list) else [value]
        return "、".join(labels.get(str(item), str(item)) for item in items)
    if qtype == QuestionType.YES_NO:
        return _yes_no_labels(question)["yes" if schema._to_bool(value) else "no"]
    if qtype == QuestionType.NUMBER:
        unit = question.get("unit") or ""
        return f"{_as_text(value)} {unit}".strip()
    if qtype == QuestionType.RATING:
        return f"{_as_text(value)} / {schema.scale_range(question)[1]}"
    return _as_text(value)


@register.simple_tag
def answer_rows(
    definition: Mapping[str, Any] | None, answers: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The rows of an answer sheet: each question of the version, its answer and its points.

    Questions skipped by skip logic are listed as skipped, so the sheet always shows the whole
    version the patient was asked.
    """
    answers = answers or {}
    shown = {q["key"] for q in schema.visible_questions(definition or {}, answers)}
    rows = []
    for question in schema.questions(definition):
        key = question.get("key", "")
        value = answers.get(key)
        rows.append(
            {
                "q": question,
                "key": key,
                "shown": key in shown,
                "answered": key in answers,
                "text": display_answer(question, value),
                "points": schema.question_score(question, value) if key in shown else None,
                "alert": key in shown and schema.is_alert(question, value),
            }
        )
    return rows
