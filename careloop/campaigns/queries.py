"""Reads of campaigns: the department gate, the lists campaigns are built from, progress counts
and the results report."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet
from django.http import Http404

from careloop.accounts.models import User
from careloop.accounts.queries import department_filter
from careloop.campaigns.choices import CampaignKind, TargetState, result_label
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.followup import queries as followup_queries
from careloop.followup.models import Task
from careloop.patients import queries as patient_queries
from careloop.patients.models import Patient
from careloop.surveys import schema

# --- the gate ------------------------------------------------------------------------------------


def campaigns_visible_to(user: User) -> QuerySet[Campaign]:
    """Campaigns of the user's departments (every department for hospital-wide staff)."""
    return Campaign.objects.filter(department_filter(user)).select_related(
        "department", "created_by", "questionnaire__questionnaire"
    )


def get_visible_campaign(user: User, pk: Any) -> Campaign:
    """The campaign, or 404 when it does not exist *or* belongs to another department."""
    try:
        return campaigns_visible_to(user).get(pk=pk)
    except (Campaign.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such campaign") from exc


# --- the lists a campaign is built from ----------------------------------------------------------


def tasks_for_list(user: User, data: dict[str, Any], today: dt.date) -> QuerySet[Task]:
    """Follow-up tasks the user may see matching the workspace filters (plan, step, status,
    department, target dates), oldest patient first."""
    tasks = followup_queries.filter_tasks(followup_queries.tasks_visible_to(user), data, today)
    if data.get("step"):
        tasks = tasks.filter(step=data["step"])
    return tasks.order_by("patient_id", "deadline", "pk")


def patients_for_list(user: User, data: dict[str, Any]) -> QuerySet[Patient]:
    """Patients the user may see matching the patient search, department, discharge dates and
    tag. On databases without JSON containment the tag is checked in ``with_tag``."""
    patients = patient_queries.filter_patients(patient_queries.visible_to(user), data)
    tag = (data.get("tag") or "").strip()
    if tag and connection.features.supports_json_field_contains:
        patients = patients.filter(tags__contains=[tag])
    return patients.order_by("pk")


def with_tag(patients: QuerySet[Patient], tag: str) -> list[int]:
    """Ids of ``patients`` carrying ``tag`` (SQLite cannot look inside a JSON list)."""
    return [
        pk
        for pk, tags in patients.values_list("pk", "tags").iterator(chunk_size=2000)
        if isinstance(tags, list) and tag in tags
    ]


# --- progress ------------------------------------------------------------------------------------


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass
class Progress:
    """Counts of a campaign's targets; ``failed_by_reason`` maps a result code to a count."""

    total: int = 0
    pending: int = 0
    in_progress: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def percent(self) -> int:
        return int(self.finished * 100 / self.total) if self.total else 0

    @property
    def reach_rate(self) -> Decimal | None:
        """Reached among the patients called to the end (skipped ones were never called)."""
        return _percent(self.done, self.done + self.failed)

    @property
    def failed_reasons(self) -> list[dict[str, Any]]:
        return _reasons(self.failed_by_reason)

    @property
    def skipped_reasons(self) -> list[dict[str, Any]]:
        return _reasons(self.skipped_by_reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "pending": self.pending,
            "in_progress": self.in_progress,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "percent": self.percent,
            "reach_rate": str(self.reach_rate) if self.reach_rate is not None else None,
            "failed_by_reason": self.failed_reasons,
            "skipped_by_reason": self.skipped_reasons,
        }


def _reasons(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"code": code, "label": result_label(code), "count": n}
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def progress(campaign: Campaign | int) -> Progress:
    """The campaign's counts in one grouped query."""
    campaign_id = campaign if isinstance(campaign, int) else campaign.pk
    rows = (
        CampaignTarget.objects.filter(campaign_id=campaign_id)
        .order_by()
        .values_list("state", "last_result", "skip_reason")
        .annotate(n=Count("pk"))
    )
    result = Progress()
    for state, last_result, skip_reason, n in rows:
        result.total += n
        setattr(result, state, getattr(result, state) + n)
        if state == TargetState.FAILED:
            code = last_result or "failed"
            result.failed_by_reason[code] = result.failed_by_reason.get(code, 0) + n
        elif state == TargetState.SKIPPED:
            code = skip_reason or "skipped"
            result.skipped_by_reason[code] = result.skipped_by_reason.get(code, 0) + n
    return result


# --- the results report --------------------------------------------------------------------------


def result_counts(campaign: Campaign) -> list[dict[str, Any]]:
    """Targets per final result (reached ones by what happened on the call), most first."""
    rows = (
        CampaignTarget.objects.filter(campaign=campaign)
        .exclude(state__in=[TargetState.PENDING, TargetState.IN_PROGRESS])
        .order_by()
        .values_list("state", "last_result", "skip_reason")
        .annotate(n=Count("pk"))
    )
    counts: Counter[tuple[str, str]] = Counter()
    for state, last_result, skip_reason, n in rows:
        code = skip_reason if state == TargetState.SKIPPED else last_result
        counts[(state, code or state)] += n
    return [
        {
            "state": state,
            "state_label": TargetState(state).label,
            "code": code,
            "label": result_label(code),
            "count": n,
        }
        for (state, code), n in counts.most_common()
    ]


def failed_targets(campaign: Campaign) -> QuerySet[CampaignTarget]:
    return (
        CampaignTarget.objects.filter(campaign=campaign, state=TargetState.FAILED)
        .select_related("patient", "task")
        .order_by("pk")
    )


@dataclass
class QuestionSummary:
    """Answers to one question: counts per answer, or min/average/max for numbers."""

    key: str
    text: str
    answered: int = 0
    counts: list[tuple[str, int]] = field(default_factory=list)
    minimum: Any = None
    average: Decimal | None = None
    maximum: Any = None


def _answer_label(question: dict[str, Any], value: Any) -> str:
    if question.get("type") == "yes_no":
        return str(_yes_no(value))
    for option in question.get("options") or []:
        if option.get("value") == value:
            return str(option.get("label") or value)
    return str(value)


def _yes_no(value: Any) -> Any:
    from django.utils.translation import gettext as _

    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    return value


def answers_summary(campaign: Campaign) -> list[QuestionSummary]:
    """For questionnaire campaigns: what the reached patients answered, question by question."""
    if campaign.kind != CampaignKind.QUESTIONNAIRE or campaign.questionnaire is None:
        return []
    answers = list(
        CampaignTarget.objects.filter(campaign=campaign, state=TargetState.DONE)
        .exclude(answers={})
        .values_list("answers", flat=True)
    )
    summaries = []
    for question in schema.questions(campaign.questionnaire.definition):
        key = question.get("key")
        summary = QuestionSummary(key=str(key), text=str(question.get("text", key)))
        values = [a[key] for a in answers if isinstance(a, dict) and a.get(key) not in (None, "")]
        summary.answered = len(values)
        numeric = [
            Decimal(str(v))
            for v in values
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if question.get("type") == "number" and numeric:
            summary.minimum, summary.maximum = min(numeric), max(numeric)
            total = sum(numeric, Decimal(0))
            summary.average = (total / len(numeric)).quantize(Decimal("0.1"), ROUND_HALF_UP)
        else:
            flat: list[Any] = []
            for value in values:
                flat.extend(value if isinstance(value, list) else [value])
            tally = Counter(_answer_label(question, v) for v in flat)
            summary.counts = tally.most_common()
        summaries.append(summary)
    return summaries
