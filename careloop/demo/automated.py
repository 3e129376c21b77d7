"""Automated follow-up calls in the demo hospital (issue 4 item 9).

``careloop demo`` starts simulated patients' phones (``careloop/demo/simulator.py``); this module
gives them something to answer as soon as the demo is up:

* a keypad questionnaire (``ivr_discharge``: recovery, today's temperature, new symptoms,
  medication, re-examination, satisfaction — every question answerable with the keypad);
* in five departments a plan "出院3天自动电话随访" whose only step, on day 3 after discharge, is an
  automated call: the demo's recent discharges get tasks due today (a few dozen with the default
  2,000 patients), which the worker's minute job dials;
* the contact policy of the demo: contact hours all day, every day (so the calls start whatever
  the time of day the demo is started — a real hospital sets its own hours on the policy page),
  retries after 5 minutes instead of hours, so unreached patients reach the nurses' lists within
  minutes.

Departments and rules are chosen so that no patient gets both this automated call and a nurse's
call on day 3 from another plan (the other plans' first steps fall on other days or on other
diagnoses).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from careloop.accounts.models import Department, User
from careloop.followup.choices import Channel
from careloop.followup.models import Plan, PlanStep, Team
from careloop.surveys.models import Questionnaire

PLAN_NAME = "出院3天自动电话随访"
QUESTIONNAIRE_CODE = "ivr_discharge"

IVR_DISCHARGE: dict[str, Any] = {
    "questions": [
        {
            "key": "recovery",
            "type": "single",
            "text": "出院后总体恢复得怎么样？",
            "required": True,
            "options": [
                {"value": "good", "label": "恢复得很好"},
                {"value": "fair", "label": "一般"},
                {"value": "worse", "label": "比出院时差", "alert": True},
            ],
        },
        {
            "key": "temperature",
            "type": "number",
            "text": "您今天的体温是多少度？",
            "required": True,
            "min": 34,
            "max": 43,
            "unit": "°C",
            "alert_above": 38.5,
        },
        {
            "key": "symptoms",
            "type": "yes_no",
            "text": "有没有新出现的胸闷、气短、头晕或伤口红肿等不适？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
        },
        {
            "key": "medication",
            "type": "yes_no",
            "text": "出院带的药是否按医嘱按时服用？",
            "required": True,
            "labels": {"yes": "按时服用", "no": "没有按时服用"},
            "alert": "no",
        },
        {
            "key": "recheck",
            "type": "yes_no",
            "text": "知道什么时候回医院复查吗？",
            "required": True,
            "labels": {"yes": "知道", "no": "不清楚"},
        },
        {
            "key": "satisfaction",
            "type": "rating",
            "text": "您对住院期间的医疗和护理服务满意吗？",
            "required": True,
            "scale": {"min": 1, "max": 5, "min_label": "非常不满意", "max_label": "非常满意"},
        },
    ]
}

# department → enrolment rules of its automated plan (see the module docstring).
AUTOMATED_PLANS: dict[str, dict[str, Any]] = {
    "CARD": {"diagnosis_prefixes": ["I50", "I48"]},
    "ORTH": {"diagnosis_prefixes": ["M16", "S72", "M51", "S52"]},
    "ENDO": {},
    "NEUR": {},
    "RESP": {},
}

# The demo's contact policy (ContactPolicy, pk 1).
DEMO_POLICY: dict[str, Any] = {
    "windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}],
    "max_per_day": 4,
    "max_per_week": 8,
    "automated_attempts": 3,
    "automated_retry_minutes": 5,
    "automated_concurrency": 10,
    "ring_timeout": 25,
}


def ensure_policy(counts: Counter[str]) -> None:
    """The demo's contact policy, unless the hospital already has one (its edits are kept)."""
    from careloop.outreach.models import ContactPolicy

    if ContactPolicy.objects.filter(pk=1).exists():
        return
    ContactPolicy.objects.create(pk=1, **DEMO_POLICY)
    counts["contact policy"] += 1


def ensure_questionnaire(admin: User, counts: Counter[str]) -> Questionnaire:
    from careloop.surveys import services

    existing = Questionnaire.objects.filter(code=QUESTIONNAIRE_CODE).first()
    if existing is not None:
        return existing
    questionnaire = services.create_questionnaire(
        code=QUESTIONNAIRE_CODE,
        title="出院后自动电话随访问卷",
        description="自动电话随访用：每题都可以用电话按键回答。",
        definition=IVR_DISCHARGE,
        acting_user=admin,
    )
    services.publish(questionnaire.versions.get(), acting_user=admin)
    counts["questionnaires"] += 1
    return questionnaire


def ensure_plans(
    departments: dict[str, Department],
    users: dict[str, User],
    teams: dict[str, Team],
    counts: Counter[str],
) -> list[Plan]:
    """The automated plans that did not exist yet (created now); [] when all exist."""
    from careloop.demo import data

    questionnaire = ensure_questionnaire(users["admin"], counts)
    created = []
    for code, rules in AUTOMATED_PLANS.items():
        department = departments[code]
        if Plan.objects.filter(name=PLAN_NAME, department=department).exists():
            continue
        plan = Plan.objects.create(
            name=PLAN_NAME,
            department=department,
            rules=rules,
            team=teams[code],
            script="自动电话随访：医院名称、录音提示、征得同意（1继续，2不方便，0转护士，9不再接收自动电话），"
            "再按键回答问卷。未接通按联系策略重拨，仍未接通转随访护士电话随访。",
            max_attempts=3,
            retry_interval_hours=24,
            created_by=users[f"doctor_{data.DEPT_SLUG[code]}"],
        )
        PlanStep.objects.create(
            plan=plan,
            order=1,
            title="出院第3天自动电话随访",
            day_offset=3,
            window_before=1,
            window_after=3,
            channel=Channel.IVR,
            questionnaire=questionnaire,
            script="自动电话按键问卷：恢复情况、体温、新发不适、服药、复查、满意度。",
        )
        created.append(plan)
        counts["plans"] += 1
    return created


def seed(
    departments: dict[str, Department],
    users: dict[str, User],
    teams: dict[str, Team],
    counts: Counter[str],
    *,
    now: dt.datetime,
) -> None:
    """Policy, questionnaire and plans; the new plans enrol the recent discharges at once."""
    from careloop.followup.models import Task
    from careloop.followup.services import auto_enrol, refresh_states

    ensure_policy(counts)
    if not ensure_plans(departments, users, teams, counts):
        return
    before = Task.objects.filter(channel=Channel.IVR).count()
    auto_enrol(now=now)
    refresh_states(now=now)
    counts["automated follow-up tasks"] += Task.objects.filter(channel=Channel.IVR).count() - before
