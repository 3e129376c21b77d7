"""Every API endpoint with the personas that may and may not use it, for test_permissions.py.

Like careloop/core/screens.py for the UI: ``url``, ``data`` and ``other_department`` take the
``hospital`` fixture and create the rows they need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from careloop.core.testing import make_encounter, make_patient
from careloop.followup.tests.factories import make_plan, make_task
from careloop.surveys.tests.factories import make_questionnaire

Factory = Callable[[Any], Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: Factory
    allowed: str  # persona that may use it, e.g. "alice"
    method: str = "get"
    data: Factory | None = None
    denied: str | None = None  # persona whose role lacks the permission
    other_department: Factory | None = None  # url of a record ``allowed`` cannot see
    ok_status: int = 200

    @property
    def writes(self) -> bool:
        return self.method != "get"


def cardio_patient(h: Any) -> Any:
    patient = make_patient()
    make_encounter(patient, h.cardio)
    return patient


def ortho_patient(h: Any) -> Any:
    patient = make_patient()
    make_encounter(patient, h.ortho)
    return patient


def plan_payload(h: Any) -> dict[str, Any]:
    return {
        "name": "PCI 术后随访",
        "department": h.cardio.pk,
        "trigger": "discharge",
        "rules": {"diagnosis_prefixes": ["I21"]},
        "steps": [
            {"order": 1, "title": "出院3天", "day_offset": 3, "channel": "phone"},
            {"order": 2, "title": "出院30天", "day_offset": 30, "channel": "sms"},
        ],
    }


def enrollment_payload(h: Any) -> dict[str, Any]:
    plan = make_plan(h.cardio)
    return {
        "plan": plan.pk,
        "patient": cardio_patient(h).pk,
        "anchor_date": timezone.localdate().isoformat(),
    }


ENDPOINTS: list[Endpoint] = [
    Endpoint("patient-list", lambda h: "/api/v1/patients/", allowed="alice"),
    Endpoint(
        "patient-detail",
        lambda h: f"/api/v1/patients/{cardio_patient(h).pk}/",
        allowed="alice",
        other_department=lambda h: f"/api/v1/patients/{ortho_patient(h).pk}/",
    ),
    Endpoint(
        "patient-reveal",
        lambda h: f"/api/v1/patients/{cardio_patient(h).pk}/reveal/",
        method="post",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/api/v1/patients/{ortho_patient(h).pk}/reveal/",
    ),
    Endpoint(
        "questionnaire-list", lambda h: "/api/v1/questionnaires/", allowed="alice", denied="henry"
    ),
    # Questionnaires hold no personal data: every department's are readable (surveys.queries).
    Endpoint(
        "questionnaire-detail",
        lambda h: f"/api/v1/questionnaires/{make_questionnaire(department=h.ortho).pk}/",
        allowed="alice",
        denied="henry",
    ),
    Endpoint(
        "questionnaire-versions",
        lambda h: f"/api/v1/questionnaires/{make_questionnaire(department=h.ortho).pk}/versions/",
        allowed="alice",
        denied="henry",
    ),
    Endpoint("plan-list", lambda h: "/api/v1/plans/", allowed="alice", denied="henry"),
    Endpoint(
        "plan-list POST",
        lambda h: "/api/v1/plans/",
        method="post",
        data=plan_payload,
        allowed="dave",
        denied="alice",
        ok_status=201,
    ),
    Endpoint(
        "plan-detail",
        lambda h: f"/api/v1/plans/{make_plan(h.cardio).pk}/",
        allowed="alice",
        denied="henry",
        other_department=lambda h: f"/api/v1/plans/{make_plan(h.ortho).pk}/",
    ),
    Endpoint(
        "plan-detail PUT",
        lambda h: f"/api/v1/plans/{make_plan(h.cardio).pk}/",
        method="put",
        data=plan_payload,
        allowed="dave",
        denied="alice",
        other_department=lambda h: f"/api/v1/plans/{make_plan(h.ortho).pk}/",
    ),
    Endpoint(
        "plan-detail PATCH",
        lambda h: f"/api/v1/plans/{make_plan(h.cardio).pk}/",
        method="patch",
        data=lambda h: {"is_active": False},
        allowed="dave",
        denied="alice",
        other_department=lambda h: f"/api/v1/plans/{make_plan(h.ortho).pk}/",
    ),
    Endpoint("task-list", lambda h: "/api/v1/tasks/", allowed="alice", denied="henry"),
    Endpoint(
        "task-detail",
        lambda h: f"/api/v1/tasks/{make_task(h.cardio).pk}/",
        allowed="alice",
        denied="henry",
        other_department=lambda h: f"/api/v1/tasks/{make_task(h.ortho).pk}/",
    ),
    Endpoint(
        "task-outcome",
        lambda h: f"/api/v1/tasks/{make_task(h.cardio).pk}/outcome/",
        method="post",
        data=lambda h: {"outcome": "no_answer"},
        allowed="alice",
        denied="dave",
        other_department=lambda h: f"/api/v1/tasks/{make_task(h.ortho).pk}/outcome/",
        ok_status=201,
    ),
    Endpoint(
        "task-claim",
        lambda h: f"/api/v1/tasks/{make_task(h.cardio).pk}/claim/",
        method="post",
        allowed="alice",
        denied="dave",
        other_department=lambda h: f"/api/v1/tasks/{make_task(h.ortho).pk}/claim/",
    ),
    Endpoint(
        "enrollment-list POST",
        lambda h: "/api/v1/enrollments/",
        method="post",
        data=enrollment_payload,
        allowed="alice",
        denied="henry",
        ok_status=201,
    ),
]
