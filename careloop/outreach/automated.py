"""Automated follow-up calls and the contact ladder (issue 4 items 4 and 5).

A follow-up step whose channel is "automated call" (``Channel.IVR``) is worked by the dialler:

1. when the step is due (its window is open) and has no call scheduled or under way, a call is
   scheduled (``schedule_due_tasks``, every minute); the contact policy decides at dialling time
   (quiet hours move the call to the next opening; caps to when they free up);
2. the call plays the step's questionnaire built by ``flowgen``: hospital, department, recording
   notice, consent (1 yes, 2 not now, 0 a nurse, 9 no more automated calls), the questions the
   keypad can answer;
3. on the result (``on_result``):

   * answered and completed → ``followup.record_outcome(reached, answers)``: the answers land in
     the surveys ``Response`` (channel IVR) like a nurse's, alerts are raised for abnormal ones;
     when a required question could not be answered by keypad the step goes to a nurse instead,
     with the keypad answers in the note;
   * no answer / busy / failed / hung up → another call after ``automated_retry_minutes`` until
     ``automated_attempts`` calls were made, then the step goes to a nurse (``hand_to_nurse``);
   * wrong number (unreachable, rejected) → to a nurse, to check the number;
   * 2 (not convenient now) → to a nurse, with a note;
   * 0 → put through live to a nurse of the team (``contactcenter/handover.py``); if nobody
     answers, the step goes to a nurse;
   * 9 → an opt-out block of automated calls (``policy.add_block``) and the step goes to a nurse:
     the patient stopped automated calls, not follow-up;
   * refused for good by the policy → to a nurse when a nurse may still call, else cancelled.

Every automated call that did not finish the step is a ``FollowUpRecord`` on channel IVR
(``followup.services.record_automated_attempt``); the nurse's attempts are counted on her channel
only, and when they are used up too the step ends unreached with a reason naming both.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.followup import services as followup
from careloop.followup import states
from careloop.followup.choices import Channel, Outcome
from careloop.followup.models import Task
from careloop.outreach import dialler, flowgen, policy
from careloop.outreach.choices import AttemptState, BlockKind, BlockSource, Purpose
from careloop.outreach.models import ContactAttempt
from careloop.surveys.schema import AnswerError

log = logging.getLogger(__name__)

PENDING_STATES = (AttemptState.SCHEDULED, AttemptState.DIALING, AttemptState.ANSWERED)
RETRY_RESULTS = frozenset({"busy", "no_answer", "failed", "hung_up", "answered"})
WRONG_NUMBER_RESULTS = frozenset({"unreachable", "rejected"})


def hospital_name() -> str:
    return str(getattr(settings, "HOSPITAL_NAME", "") or "医院")


def patient_greeting_name(patient: Any) -> str:
    """How the call addresses the patient: surname + 先生/女士, or the full name."""
    name = (patient.name or "").strip()
    sex = getattr(patient, "sex", "")
    if name and sex in ("M", "F"):
        return name[0] + ("先生" if sex == "M" else "女士")
    return name


def flow_for(task: Task) -> dict[str, Any]:
    version = followup.questionnaire_version(task.step)
    return flowgen.build_flow(
        version, hospital=hospital_name(), department=task.department.name, step=task.step
    )


def _automated_attempts(task: Task) -> Any:
    return ContactAttempt.objects.filter(task=task, purpose=Purpose.FOLLOWUP, channel=Channel.IVR)


def schedule_task(
    task: Task,
    *,
    now: dt.datetime | None = None,
    not_before: dt.datetime | None = None,
    flows: dict[tuple[int, int], dict[str, Any]] | None = None,
) -> ContactAttempt:
    """Schedule the next automated call of a step (``flows``: a cache of built flows by step
    and department, for a run over many steps)."""
    now = now or timezone.now()
    made = _automated_attempts(task).filter(state=AttemptState.ENDED).count()
    key = (task.step_id, task.department_id)
    flow = flows.get(key) if flows is not None else None
    if flow is None:
        flow = flow_for(task)
        if flows is not None:
            flows[key] = flow
    return dialler.schedule(
        task.patient,
        purpose=Purpose.FOLLOWUP,
        channel=Channel.IVR,
        flow=flow,
        variables={"patient_name": patient_greeting_name(task.patient), "task_id": task.pk},
        task=task,
        not_before=not_before or now,
        attempt_no=made + 1,
    )


def schedule_due_tasks(*, now: dt.datetime | None = None, limit: int = 2000) -> int:
    """Every open, due automated step without a call scheduled or under way gets one."""
    now = now or timezone.now()
    today = states.local_today(now)
    busy = ContactAttempt.objects.filter(task=OuterRef("pk"), state__in=PENDING_STATES)
    # A call that just ended whose result is not handled yet: the step may be done already.
    ending = dialler.unhandled_recently(now).filter(task=OuterRef("pk"))
    tasks = (
        Task.objects.filter(channel=Channel.IVR)
        .filter(states.status_filter(states.ACTIONABLE, today))
        .exclude(Exists(busy))
        .exclude(Exists(ending))
        .select_related("patient", "step", "department", "plan")
        .order_by("deadline", "pk")[:limit]
    )
    rules = policy.current_policy()
    flows: dict[tuple[int, int], dict[str, Any]] = {}
    count = 0
    for task in list(tasks):
        made = _automated_attempts(task).filter(state=AttemptState.ENDED).count()
        if made >= rules.automated_attempts:
            followup.hand_to_nurse(task, reason=_unreached_reason(made), now=now)
            continue
        not_before = (
            task.next_attempt_at if task.next_attempt_at and task.next_attempt_at > now else now
        )
        schedule_task(task, now=now, not_before=not_before, flows=flows)
        count += 1
    return count


def handover_reason() -> str:
    return _("The patient asked for a nurse in an automated call and was put through.")


def _unreached_reason(made: int) -> str:
    return _("%(n)s automated calls were not answered.") % {"n": made}


# --- results ------------------------------------------------------------------------------------


def on_result(attempt: ContactAttempt) -> None:
    """The dialler's result handler for follow-up calls (see the module docstring)."""
    task = attempt.task
    if task is None:
        return
    task.refresh_from_db()
    if task.status in states.FINAL or task.channel != Channel.IVR:
        return
    now = attempt.ended_at or timezone.now()
    if attempt.state == AttemptState.BLOCKED:
        _blocked(task, attempt, now)
        return
    if attempt.state != AttemptState.ENDED:
        return
    result = attempt.result
    variables = (attempt.data or {}).get("variables") or {}
    if result == "completed":
        _completed(task, attempt, variables, now)
    elif result == "opted_out":
        policy.add_block(
            task.patient,
            BlockKind.OPT_OUT,
            channel=Channel.IVR,
            source=BlockSource.KEYPAD,
            reason=_("Pressed 9 in an automated follow-up call."),
            now=now,
        )
        note = _("The patient pressed 9: no more automated calls; follow up by phone.")
        _record(task, attempt, Outcome.CALL_BACK, note, now)
        followup.hand_to_nurse(task, reason=note, now=now)
    elif result == "no_consent":
        note = _("The patient answered but it was not a good time (pressed 2).")
        _record(task, attempt, Outcome.CALL_BACK, note, now)
        followup.hand_to_nurse(task, reason=note, now=now)
    elif result == "to_nurse":
        handed = (attempt.data or {}).get("handover") or {}
        if handed.get("answered_by"):
            return  # the nurse talked to the patient; she records the outcome
        note = _("The patient asked for a nurse (pressed 0); no nurse was free.")
        _record(task, attempt, Outcome.CALL_BACK, note, now)
        followup.hand_to_nurse(task, reason=note, now=now)
    elif result in WRONG_NUMBER_RESULTS:
        note = _("The number could not be reached (%(result)s): check the number.") % {
            "result": result
        }
        _record(task, attempt, Outcome.WRONG_NUMBER, note, now)
        followup.hand_to_nurse(task, reason=note, now=now)
    else:
        _retry_or_hand_over(task, attempt, now)


def _record(task: Task, attempt: ContactAttempt, outcome: str, note: str, now: dt.datetime) -> None:
    try:
        record = followup.record_automated_attempt(task, outcome=outcome, note=note, now=now)
    except followup.FollowupError:
        return
    _remember_record(attempt, record.pk)


def _remember_record(attempt: ContactAttempt, record_id: int) -> None:
    from careloop.contactcenter.models import Recording

    with transaction.atomic():
        locked = ContactAttempt.objects.select_for_update().get(pk=attempt.pk)
        locked.data = {**(locked.data or {}), "followup_record": record_id}
        locked.save(update_fields=["data"])
        if locked.call_id:
            Recording.objects.filter(call_id=locked.call_id, followup_record__isnull=True).update(
                followup_record_id=record_id
            )


def _retry_or_hand_over(task: Task, attempt: ContactAttempt, now: dt.datetime) -> None:
    rules = policy.current_policy()
    busy = attempt.result == "busy"
    label = {
        "busy": _("busy"),
        "no_answer": _("no answer"),
        "hung_up": _("hung up"),
        "answered": _("no keys pressed"),
    }.get(attempt.result, attempt.result)
    note = _("Automated call %(n)s: %(result)s.") % {"n": attempt.attempt_no, "result": label}
    _record(task, attempt, Outcome.BUSY if busy else Outcome.NO_ANSWER, note, now)
    made = _automated_attempts(task).filter(state=AttemptState.ENDED).count()
    if made >= rules.automated_attempts:
        followup.hand_to_nurse(task, reason=_unreached_reason(made), now=now)
        return
    if _automated_attempts(task).filter(state__in=PENDING_STATES).exists():
        return
    task.refresh_from_db()
    if task.status in states.FINAL:
        return
    schedule_task(
        task, now=now, not_before=now + dt.timedelta(minutes=rules.automated_retry_minutes)
    )


def _blocked(task: Task, attempt: ContactAttempt, now: dt.datetime) -> None:
    """Refused for good: a nurse may still call (e.g. only automated calls were refused, or no
    number is known), else the step is cancelled with the policy's reason."""
    refusal = policy.standing_refusal(task.patient, Channel.PHONE)
    if refusal is not None:
        followup.stop_contact(
            task.patient, reason=refusal.message, channels=[Channel.IVR, Channel.PHONE], now=now
        )
        return
    followup.hand_to_nurse(task, reason=attempt.reason or _("Automated call refused."), now=now)


def _completed(
    task: Task, attempt: ContactAttempt, variables: dict[str, Any], now: dt.datetime
) -> None:
    version = followup.questionnaire_version(task.step)
    answers, unanswered = flowgen.answers_from_variables(version, variables)
    try:
        record = followup.record_outcome(
            task,
            outcome=Outcome.REACHED,
            answers=answers,
            note=_("Answered by keypad in an automated call."),
            acting_user=None,
            now=now,
        )
    except (AnswerError, followup.FollowupError) as exc:
        missing = sorted(getattr(exc, "errors", {}) or {}) or unanswered
        log.info("task %s: keypad answers incomplete, handed to a nurse", task.pk)
        summary = flowgen.describe_answers(version, answers)
        note = _("Keypad answers: %(answers)s. Still to ask: %(missing)s.") % {
            "answers": summary or "-",
            "missing": flowgen.describe_questions(version, missing) or "-",
        }
        _record(task, attempt, Outcome.CALL_BACK, note[:2000], now)
        followup.hand_to_nurse(
            task, reason=_("Automated call answered; questions left for a nurse."), now=now
        )
        return
    _remember_record(attempt, record.pk)
