"""Abnormal-answer alerts (F2.5, B1): raising them from responses, the clinician's loop, escalation.

An alert is raised for each answer matching an active ``AlertRule`` and for each answer the
questionnaire itself marks abnormal (an option, yes/no or range flagged ``alert``) that no rule
already covers. Its life: open → acknowledged → advised → closed. An alert not acknowledged by its
deadline (plus the rule's escalation hours) is escalated once to the department head, or the
department's supervisors when it has no head.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.alerts.choices import AdviceChannel, AlertState, Operator, Severity
from careloop.alerts.models import Advice, Alert, AlertRule, Evaluation
from careloop.followup.models import FollowUpRecord, Notification, Task
from careloop.patients.models import Encounter
from careloop.surveys import schema
from careloop.surveys.choices import QuestionType
from careloop.surveys.models import Questionnaire, Response
from careloop.surveys.templatetags.survey_tags import display_answer

logger = logging.getLogger(__name__)

#: Alerts raised by an answer the questionnaire marks abnormal (no rule): their policy.
FLAG_SEVERITY = Severity.HIGH
FLAG_ACK_HOURS = 24
FLAG_ESCALATION_HOURS = 0
#: The job looks back this far for responses not evaluated yet (a restart loses nothing).
LOOKBACK = dt.timedelta(days=2)
BATCH = 500

#: Notification kinds (strings stored in followup.Notification.kind; see the report to followup).
KIND_ALERT = "alert"
KIND_ESCALATED = "alert_escalated"

#: The plan that carries advice back to patients, one per department (data, Chinese).
ADVICE_PLAN_NAME = "异常结果医生建议回访"
ADVICE_STEP_TITLE = "转达医生建议"


class AlertError(Exception):
    """An alert operation refused for a reason the user can read."""


# --- matching ------------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"yes", "true", "是", "有"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"no", "false", "否", "没有", "无"}:
        return False
    return None


def _typed(qtype: str | None, value: Any) -> Any:
    if qtype in (QuestionType.NUMBER, QuestionType.RATING):
        return _number(value)
    if qtype == QuestionType.YES_NO:
        return _boolean(value)
    if value is None:
        return None
    return str(value)


def matches(operator: str, expected: Any, question: Mapping[str, Any], answer: Any) -> bool:
    """Whether ``answer`` to ``question`` satisfies ``answer <operator> expected``.

    Numbers and ratings compare as numbers, yes/no as booleans, dates as ISO dates, the rest as
    text. On a multiple-choice answer ``eq`` / ``contains`` mean "was ticked", ``ne`` "was not
    ticked" and ``in`` "any of these was ticked". An unanswered question never matches.
    """
    if answer is None or answer == "" or answer == []:
        return False
    qtype = question.get("type")
    if qtype == QuestionType.MULTIPLE:
        ticked = {str(item) for item in (answer if isinstance(answer, list) else [answer])}
        wanted = {str(v) for v in expected} if isinstance(expected, list) else {str(expected)}
        if operator in (Operator.EQ, Operator.CONTAINS, Operator.IN):
            return bool(ticked & wanted)
        if operator == Operator.NE:
            return not ticked & wanted
        return False
    value = _typed(qtype, answer)
    if value is None:
        return False
    if operator == Operator.IN:
        items = expected if isinstance(expected, list) else [expected]
        return value in [_typed(qtype, item) for item in items]
    if operator == Operator.CONTAINS:
        return isinstance(value, str) and str(expected) in value
    target = _typed(qtype, expected)
    if target is None:
        return False
    try:
        if operator == Operator.EQ:
            return bool(value == target)
        if operator == Operator.NE:
            return bool(value != target)
        if operator == Operator.GT:
            return bool(value > target)
        if operator == Operator.GTE:
            return bool(value >= target)
        if operator == Operator.LT:
            return bool(value < target)
        if operator == Operator.LTE:
            return bool(value <= target)
    except TypeError:
        return False
    return False


def render_message(template: str, *, question: str, answer: str) -> str:
    """The rule's message with ``{question}`` and ``{answer}`` filled in (plain replacement)."""
    return template.replace("{question}", question).replace("{answer}", answer)[:300]


def rules_for(questionnaire: Questionnaire) -> list[AlertRule]:
    return list(
        AlertRule.objects.filter(is_active=True)
        .filter(Q(questionnaire__isnull=True) | Q(questionnaire=questionnaire))
        .order_by("id")
    )


# --- raising -------------------------------------------------------------------------------------


def _task_of(response: Response) -> Task | None:
    record = (
        FollowUpRecord.objects.filter(response=response)
        .select_related("task__enrollment__encounter__attending_doctor", "task__department")
        .first()
    )
    return record.task if record is not None else None


def _place(response: Response, task: Task | None) -> tuple[Department | None, Encounter | None]:
    """The department responsible for the response and the encounter behind it."""
    if task is not None:
        return task.department, task.enrollment.encounter
    encounters = Encounter.objects.filter(patient_id=response.patient_id).select_related(
        "department", "attending_doctor"
    )
    department = response.version.questionnaire.department
    if department is not None:
        encounter = encounters.filter(department=department).order_by("-started_at").first()
        return department, encounter
    encounter = encounters.order_by("-started_at").first()
    if encounter is not None:
        return encounter.department, encounter
    return response.patient.registered_department, None


def department_doctors(department: Department | None) -> list[User]:
    if department is None:
        return []
    return list(
        User.objects.filter(role=Role.DOCTOR, departments=department, is_active=True).order_by("id")
    )


def _hits(
    response: Response, rules: Iterable[AlertRule]
) -> list[tuple[str, AlertRule | None, dict[str, Any]]]:
    """(key, rule or None, question) of every abnormal answer of the response."""
    definition = response.version.definition
    answers = response.answers or {}
    visible = {q["key"]: q for q in schema.visible_questions(definition, answers)}
    found: list[tuple[str, AlertRule | None, dict[str, Any]]] = []
    covered: set[str] = set()
    for rule in rules:
        question = visible.get(rule.question_key)
        if question is None:
            continue
        if matches(rule.operator, rule.value, question, answers.get(rule.question_key)):
            found.append((f"rule:{rule.pk}", rule, question))
            covered.add(rule.question_key)
    for key in schema.alerts(definition, answers):
        if key not in covered and key in visible:
            found.append((f"question:{key}", None, visible[key]))
    return found


def _notify(
    users: Iterable[User], *, kind: str, text: str, task_id: int | None, now: dt.datetime
) -> None:
    Notification.objects.bulk_create(
        [
            Notification(user=user, kind=kind, text=text[:300], task_id=task_id, created_at=now)
            for user in {u.pk: u for u in users}.values()
        ]
    )


def _raised_text(alert: Alert) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("Alert #%(id)s (%(severity)s): %(message)s") % {
            "id": alert.pk,
            "severity": alert.get_severity_display(),
            "message": alert.message,
        }


def _escalated_text(alert: Alert) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("Alert #%(id)s was not acknowledged in time: %(message)s") % {
            "id": alert.pk,
            "message": alert.message,
        }


def evaluate_response(
    response: Response, *, task: Task | None = None, now: dt.datetime | None = None
) -> list[Alert]:
    """Raise the alerts of a response; returns every alert of the response (old and new).

    Idempotent: an alert already raised for the same rule or question is not raised again, and
    only new alerts notify the assigned doctor (or, without one, the department's doctors).
    ``followup.services.record_outcome`` may call this right after saving a response; the
    minute job catches any response it did not.
    """
    now = now or timezone.now()
    response = Response.objects.select_related(
        "version__questionnaire", "patient__registered_department"
    ).get(pk=response.pk)
    task = task or _task_of(response)
    department, encounter = _place(response, task)
    doctor = encounter.attending_doctor if encounter is not None else None
    if doctor is not None and not doctor.is_active:
        doctor = None
    hits = _hits(response, rules_for(response.version.questionnaire))
    answers = response.answers or {}
    created: list[Alert] = []
    with transaction.atomic():
        for key, rule, question in hits:
            answer = display_answer(question, answers.get(question["key"]))
            text = str(question.get("text", ""))
            if rule is not None:
                severity, ack, escalation = rule.severity, rule.ack_hours, rule.escalation_hours
                message = render_message(rule.message, question=text, answer=answer)
            else:
                severity, ack, escalation = FLAG_SEVERITY, FLAG_ACK_HOURS, FLAG_ESCALATION_HOURS
                message = f"{text}：{answer}"[:300]
            deadline = now + dt.timedelta(hours=ack)
            try:
                with transaction.atomic():
                    alert, is_new = Alert.objects.get_or_create(
                        response=response,
                        key=key,
                        defaults={
                            "patient_id": response.patient_id,
                            "department": department,
                            "task": task,
                            "rule": rule,
                            "question_key": question["key"],
                            "question_text": text[:300],
                            "answer_text": answer[:300],
                            "message": message,
                            "severity": severity,
                            "assigned_doctor": doctor,
                            "raised_at": now,
                            "deadline": deadline,
                            "escalate_at": deadline + dt.timedelta(hours=escalation),
                        },
                    )
            except IntegrityError:  # raised by a concurrent evaluation
                continue
            if is_new:
                created.append(alert)
        Evaluation.objects.update_or_create(
            response=response,
            defaults={
                "department": department,
                "submitted_at": response.submitted_at,
                "evaluated_at": now,
                "alert_count": Alert.objects.filter(response=response).count(),
            },
        )
        recipients = [doctor] if doctor is not None else department_doctors(department)
        for alert in created:
            _notify(
                recipients,
                kind=KIND_ALERT,
                text=_raised_text(alert),
                task_id=alert.task_id,
                now=now,
            )
    if created:
        logger.info("response %s raised %s alerts", response.pk, len(created))
    return list(Alert.objects.filter(response=response).order_by("id"))


def evaluate_pending(*, now: dt.datetime | None = None) -> int:
    """Evaluate recent responses that have not been evaluated yet; returns how many."""
    now = now or timezone.now()
    pending = (
        Response.objects.filter(submitted_at__gte=now - LOOKBACK, submitted_at__lte=now)
        .filter(~Exists(Evaluation.objects.filter(response=OuterRef("pk"))))
        .order_by("id")[:BATCH]
    )
    count = 0
    for response in pending:
        evaluate_response(response, now=now)
        count += 1
    return count


# --- the clinician's loop ------------------------------------------------------------------------


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


def _refresh(alert: Alert) -> Alert:
    alert.refresh_from_db()
    return alert


def acknowledge(alert: Alert, *, acting_user: User, now: dt.datetime | None = None) -> Alert:
    """open → acknowledged: a clinician has seen it (stops the escalation clock)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(alert)
        if locked.state != AlertState.OPEN:
            raise AlertError(_("Only an open alert can be acknowledged."))
        locked.state = AlertState.ACKNOWLEDGED
        locked.acknowledged_at = now
        locked.acknowledged_by = acting_user
        locked.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    return _refresh(alert)


def _advice_plan(department: Department) -> Any:
    from careloop.followup.choices import Assignment, Channel, Trigger
    from careloop.followup.models import Plan, PlanStep

    plan = (
        Plan.objects.filter(department=department, name=ADVICE_PLAN_NAME, trigger=Trigger.ENROLMENT)
        .order_by("id")
        .first()
    )
    if plan is None:
        plan = Plan.objects.create(
            name=ADVICE_PLAN_NAME,
            department=department,
            trigger=Trigger.ENROLMENT,
            auto_enrol=False,
            assignment=Assignment.POOL,
            max_attempts=3,
            retry_interval_hours=2,
        )
        PlanStep.objects.create(
            plan=plan,
            order=1,
            title=ADVICE_STEP_TITLE,
            day_offset=0,
            window_before=0,
            window_after=1,
            channel=Channel.PHONE,
        )
    return plan


def _advice_task(alert: Alert, *, acting_user: User, now: dt.datetime) -> Task:
    """A nurse's call task carrying the advice to the patient.

    followup has no ad-hoc task yet, so the task comes from enrolling the patient (without an
    encounter, anchored today) on the department's one-step advice plan; same-day advice to the
    same patient shares the open task.
    """
    from careloop.followup import services as followup
    from careloop.followup.services import FollowupError

    if alert.department is None:
        raise AlertError(_("The alert has no department to call the patient from."))
    plan = _advice_plan(alert.department)
    try:
        enrollment = followup.enrol(
            plan,
            alert.patient,
            anchor_date=timezone.localdate(now),
            acting_user=acting_user,
            now=now,
        )
    except FollowupError as exc:
        raise AlertError(str(exc)) from exc
    task = enrollment.tasks.order_by("id").first()
    if task is None:
        raise AlertError(_("No call task could be created for this patient."))
    nurse = alert.task.assignee if alert.task is not None else None
    if nurse is not None and task.assignee_id is None:
        try:
            followup.assign(task, assignee=nurse, acting_user=acting_user, now=now)
        except FollowupError:
            pass  # the nurse left the department: the task stays in the pool
    return task


def advise(
    alert: Alert,
    *,
    text: str,
    channel: str,
    acting_user: User,
    now: dt.datetime | None = None,
) -> Advice:
    """Record the clinician's advice and create the nurse's task that passes it on.

    An open alert is acknowledged by the same act. Advice can be added again while the alert
    is not closed (e.g. after the patient's reply).
    """
    now = now or timezone.now()
    text = (text or "").strip()
    if not text:
        raise AlertError(_("Write the advice for the patient."))
    if channel not in AdviceChannel.values:
        raise AlertError(_("Choose how the advice reaches the patient."))
    with transaction.atomic():
        locked = _locked(alert)
        if locked.state == AlertState.CLOSED:
            raise AlertError(_("This alert is closed."))
        task = _advice_task(locked, acting_user=acting_user, now=now)
        advice = Advice.objects.create(
            alert=locked, text=text, channel=channel, by=acting_user, at=now, task=task
        )
        fields = []
        if locked.acknowledged_at is None:
            locked.acknowledged_at, locked.acknowledged_by = now, acting_user
            fields += ["acknowledged_at", "acknowledged_by"]
        if locked.advised_at is None:
            locked.advised_at = now
            fields.append("advised_at")
        if locked.state != AlertState.ADVISED:
            locked.state = AlertState.ADVISED
            fields.append("state")
        if fields:
            locked.save(update_fields=fields)
    _refresh(alert)
    return advice


def close(
    alert: Alert, *, note: str = "", acting_user: User, now: dt.datetime | None = None
) -> Alert:
    """End the alert. Without advice a note saying why is required (e.g. a false alarm)."""
    now = now or timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        locked = _locked(alert)
        if locked.state == AlertState.CLOSED:
            raise AlertError(_("This alert is already closed."))
        if locked.advised_at is None and not note:
            raise AlertError(_("Say why the alert is closed without advice."))
        locked.state = AlertState.CLOSED
        locked.closed_at = now
        locked.closed_by = acting_user
        locked.close_note = note[:500]
        fields = ["state", "closed_at", "closed_by", "close_note"]
        if locked.acknowledged_at is None:
            locked.acknowledged_at, locked.acknowledged_by = now, acting_user
            fields += ["acknowledged_at", "acknowledged_by"]
        locked.save(update_fields=fields)
    return _refresh(alert)


# --- escalation ----------------------------------------------------------------------------------


def escalation_targets(department: Department | None) -> list[User]:
    """The department head, else the department's supervisors."""
    if department is None:
        return []
    if department.head is not None and department.head.is_active:
        return [department.head]
    return list(
        User.objects.filter(role=Role.SUPERVISOR, departments=department, is_active=True).order_by(
            "id"
        )
    )


def escalate_overdue(*, now: dt.datetime | None = None) -> int:
    """Escalate open alerts past their deadline (plus escalation hours), each exactly once.

    A conditional UPDATE claims each alert, so several workers may run this at once.
    """
    now = now or timezone.now()
    due = (
        Alert.objects.filter(state=AlertState.OPEN, escalated_at__isnull=True, escalate_at__lte=now)
        .select_related("department__head")
        .order_by("id")[:BATCH]
    )
    count = 0
    for alert in due:
        targets = escalation_targets(alert.department)
        with transaction.atomic():
            claimed = Alert.objects.filter(
                pk=alert.pk, state=AlertState.OPEN, escalated_at__isnull=True
            ).update(escalated_at=now, escalated_to=targets[0] if targets else None)
            if not claimed:
                continue
            alert.escalated_at = now
            _notify(
                targets,
                kind=KIND_ESCALATED,
                text=_escalated_text(alert),
                task_id=alert.task_id,
                now=now,
            )
        count += 1
    if count:
        logger.info("escalated %s alerts", count)
    return count


# --- the default rule set ------------------------------------------------------------------------

#: (questionnaire code or None, question key, operator, value, severity, ack hours, message)
DEFAULT_RULES: list[tuple[str | None, str, str, Any, str, int, str]] = [
    (
        None,
        "temperature",
        Operator.GT,
        38.5,
        Severity.HIGH,
        4,
        "发热：{question} {answer}，高于38.5°C",
    ),
    ("pci", "chest_pain", Operator.EQ, "rest", Severity.CRITICAL, 1, "静息时胸痛：{answer}"),
    ("pci", "chest_pain_duration", Operator.EQ, "gt15", Severity.CRITICAL, 1, "胸痛持续超过15分钟"),
    ("pci", "puncture_site", Operator.EQ, "hematoma", Severity.HIGH, 4, "穿刺部位异常：{answer}"),
    ("pci", "antiplatelet", Operator.EQ, False, Severity.HIGH, 8, "未按医嘱服用抗血小板药物"),
    ("pci", "bleeding", Operator.IN, ["black_stool", "urine"], Severity.HIGH, 4, "出血：{answer}"),
    ("pci", "sbp", Operator.GT, 180, Severity.HIGH, 4, "收缩压过高：{answer}"),
    ("tka", "pain", Operator.GTE, 7, Severity.MEDIUM, 24, "膝关节疼痛评分≥7：{answer}"),
    ("tka", "wound_bleeding", Operator.EQ, True, Severity.HIGH, 4, "伤口渗血、渗液"),
    (
        "tka",
        "calf_swelling",
        Operator.EQ,
        True,
        Severity.CRITICAL,
        2,
        "小腿肿胀疼痛，警惕深静脉血栓",
    ),
    (
        "diabetes",
        "fasting_glucose",
        Operator.LT,
        3.9,
        Severity.CRITICAL,
        2,
        "低血糖：空腹血糖 {answer}",
    ),
    (
        "diabetes",
        "fasting_glucose",
        Operator.GT,
        13.9,
        Severity.HIGH,
        8,
        "高血糖：空腹血糖 {answer}",
    ),
    (
        "diabetes",
        "insulin_adherence",
        Operator.IN,
        ["often", "stopped"],
        Severity.MEDIUM,
        24,
        "胰岛素未按时注射：{answer}",
    ),
    (
        "postpartum",
        "lochia",
        Operator.EQ,
        "heavy",
        Severity.CRITICAL,
        1,
        "产后大出血征象：{answer}",
    ),
    ("postpartum", "mood", Operator.EQ, "harm", Severity.CRITICAL, 1, "产后抑郁风险：{answer}"),
    ("postpartum", "cesarean_wound", Operator.EQ, "open", Severity.HIGH, 4, "剖宫产伤口裂开"),
    ("discharge", "medication", Operator.EQ, False, Severity.MEDIUM, 24, "未按医嘱服药"),
]


def ensure_default_rules() -> int:
    """Create the default rules for the sample questionnaires that exist; returns how many new.

    Idempotent: a rule with the same questionnaire, key, operator and value is left as it is,
    so local edits (severity, hours, message, deactivation) survive a re-run.
    """
    questionnaires = {q.code: q for q in Questionnaire.objects.all()}
    created = 0
    with transaction.atomic():
        for code, key, operator, value, severity, ack, message in DEFAULT_RULES:
            questionnaire = questionnaires.get(code) if code else None
            if code and questionnaire is None:
                continue
            existing = AlertRule.objects.filter(
                questionnaire=questionnaire, question_key=key, operator=operator
            )
            if any(rule.value == value for rule in existing):
                continue
            AlertRule.objects.create(
                questionnaire=questionnaire,
                question_key=key,
                operator=operator,
                value=value,
                severity=severity,
                ack_hours=ack,
                message=message,
            )
            created += 1
    return created
