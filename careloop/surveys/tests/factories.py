"""Factories for questionnaires and responses (explicit defaults, no random data)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from careloop.accounts.models import Department
from careloop.patients.models import Patient
from careloop.surveys import services
from careloop.surveys.choices import ResponseChannel
from careloop.surveys.models import Questionnaire, QuestionnaireVersion, Response

_seq = itertools.count(1)

# A small post-discharge questionnaire using skip logic and scoring.
BASIC_DEFINITION: dict[str, Any] = {
    "questions": [
        {
            "key": "chest_pain",
            "type": "yes_no",
            "text": "出院后是否有胸痛？",
            "required": True,
            "score": {"yes": 0, "no": 2},
            "alert": "yes",
        },
        {
            "key": "pain_level",
            "type": "rating",
            "text": "胸痛程度",
            "required": True,
            "scale": {"min": 0, "max": 10},
            "show_if": {"key": "chest_pain", "op": "eq", "value": True},
        },
        {
            "key": "temperature",
            "type": "number",
            "text": "体温",
            "required": True,
            "min": 35,
            "max": 42,
            "unit": "°C",
            "alert_above": 37.5,
        },
        {
            "key": "medication",
            "type": "single",
            "text": "是否按时服药？",
            "required": False,
            "options": [
                {"value": "always", "label": "每天按时", "score": 2},
                {"value": "sometimes", "label": "偶尔漏服", "score": 1},
                {"value": "never", "label": "没有服药", "score": 0, "alert": True},
            ],
        },
    ]
}


def basic_definition() -> dict[str, Any]:
    return copy.deepcopy(BASIC_DEFINITION)


def make_questionnaire(
    *,
    definition: dict[str, Any] | None = None,
    published: bool = True,
    department: Department | None = None,
    title: str = "心内科出院随访",
    **overrides: Any,
) -> Questionnaire:
    """A questionnaire whose version 1 holds ``definition`` (published unless told otherwise)."""
    questionnaire = services.create_questionnaire(
        title=title,
        code=overrides.pop("code", f"test-{next(_seq)}"),
        department=department,
        definition=definition if definition is not None else basic_definition(),
        acting_user=None,
        **overrides,
    )
    if published:
        services.publish(questionnaire.versions.get(), acting_user=None)
    return questionnaire


def latest_version(questionnaire: Questionnaire) -> QuestionnaireVersion:
    return questionnaire.versions.order_by("-number").first()  # type: ignore[return-value]


def make_response(
    version: QuestionnaireVersion,
    patient: Patient,
    *,
    answers: dict[str, Any] | None = None,
    channel: str = ResponseChannel.AGENT,
) -> Response:
    return services.submit_response(
        version,
        patient=patient,
        answers=answers
        if answers is not None
        else {"chest_pain": False, "temperature": 36.8, "medication": "always"},
        channel=channel,
        acting_user=None,
    )
