"""Every state change of a campaign: building its list, start / pause / resume / cancel, the
automated calls it schedules through the dialler, their results, and preview dialling.

Automated campaigns (voice notification, questionnaire) never dial themselves: ``pump`` hands
attempts to ``careloop.outreach.dialler.schedule`` (purpose ``campaign``), whose ``dispatch`` checks
the hospital's contact policy before each call and keeps to the campaign's concurrency; results
come back through ``attempt_ended``, registered as the dialler's result handler.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.models import User
from careloop.campaigns import events
from careloop.campaigns.choices import (
    DIAL_FAILURES,
    CampaignKind,
    CampaignState,
    TargetState,
)
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.followup.choices import Channel, Outcome
from careloop.followup.models import Task
from careloop.outreach import policy, speech
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt, ContactBlock, ContactPolicy
from careloop.patients.choices import Sex
from careloop.patients.models import Patient

log = logging.getLogger(__name__)

PURPOSE = "campaign"
#: A nurse's hold on a preview target lapses after this long without an outcome.
CLAIM_TIMEOUT = dt.timedelta(minutes=30)
#: Results of an answered call that mean the patient did not take part (not "reached"); every
#: other result of an answered call (completed, hung_up, opted_out, to_nurse) counts as reached.
NOT_REACHED_ON_ANSWER = ("no_consent",)


class CampaignError(Exception):
    """A campaign change that is not allowed now; the message is for the user."""


def _user(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


# --- building the list ---------------------------------------------------------------------------


@dataclass
class ListResult:
    """What adding patients to a campaign did: added to call, added as skipped, already there."""

    added: int = 0
    skipped: int = 0
    duplicates: int = 0


def _channel(campaign: Campaign) -> str:
    return Channel.PHONE if campaign.kind == CampaignKind.PREVIEW else Channel.IVR


def add_targets(
    campaign: Campaign,
    rows: Iterable[tuple[Patient, Task | None]],
    *,
    acting_user: User | None,
    now: dt.datetime | None = None,
) -> ListResult:
    """Add patients (with the follow-up task they come from, if any) to a draft campaign.

    A patient is added once per campaign (the first task wins). Patients the contact policy
    forbids for good (deceased, do-not-contact, consent withdrawn, opted out of calls) and
    patients without a phone number are added as skipped with the reason, never dropped.
    """
    now = now or timezone.now()
    channel = _channel(campaign)
    result = ListResult()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != CampaignState.DRAFT:
            raise CampaignError(_("Patients can be added only while the campaign is a draft."))
        seen = set(
            CampaignTarget.objects.filter(campaign=locked).values_list("patient_id", flat=True)
        )
        chunk: list[tuple[Patient, Task | None]] = []
        for patient, task in rows:
            if patient.pk in seen:
                result.duplicates += 1
                continue
            seen.add(patient.pk)
            chunk.append((patient, task))
            if len(chunk) >= LIST_CHUNK:
                _add_chunk(locked, chunk, channel=channel, result=result, now=now)
                chunk = []
        _add_chunk(locked, chunk, channel=channel, result=result, now=now)
        events.push_progress(locked.pk)
    return result


#: Patients decided and inserted per round when a list is built.
LIST_CHUNK = 1000


def _may_be_refused(patient: Patient, blocked_ids: set[int]) -> bool:
    """Whether the policy could refuse this patient for good: a flag or an active block. The
    policy itself (``standing_refusal``) decides for those; the others need no query each."""
    return bool(
        patient.pk in blocked_ids
        or patient.is_deceased
        or patient.do_not_contact
        or patient.call_opt_out
        or patient.sms_opt_out
    )


def _add_chunk(
    campaign: Campaign,
    rows: list[tuple[Patient, Task | None]],
    *,
    channel: str,
    result: ListResult,
    now: dt.datetime,
) -> None:
    if not rows:
        return
    blocked_ids = set(
        ContactBlock.objects.filter(
            patient_id__in=[patient.pk for patient, _task in rows], lifted_at__isnull=True
        ).values_list("patient_id", flat=True)
    )
    targets = []
    for patient, task in rows:
        target = CampaignTarget(campaign=campaign, patient=patient, task=task, created_at=now)
        refusal = (
            policy.standing_refusal(patient, channel)
            if _may_be_refused(patient, blocked_ids)
            else None
        )
        if refusal is not None:
            _skip(target, refusal.reason, refusal.message, now=now)
        elif not patient.phone:
            _skip(target, "no_phone", _("The patient has no phone number."), now=now)
        if target.state == TargetState.SKIPPED:
            result.skipped += 1
        else:
            result.added += 1
        targets.append(target)
    CampaignTarget.objects.bulk_create(targets)


def _skip(target: CampaignTarget, code: str, text: str, *, now: dt.datetime) -> None:
    target.state = TargetState.SKIPPED
    target.skip_reason = code[:30]
    target.reason = str(text)[:200]
    target.finished_at = now


def add_tasks(campaign: Campaign, tasks: Iterable[Task], *, acting_user: User | None) -> ListResult:
    return add_targets(
        campaign,
        ((task.patient, task) for task in tasks),
        acting_user=acting_user,
    )


def add_patients(
    campaign: Campaign, patients: Iterable[Patient], *, acting_user: User | None
) -> ListResult:
    return add_targets(campaign, ((p, None) for p in patients), acting_user=acting_user)


def remove_pending_targets(campaign: Campaign, *, acting_user: User | None) -> int:
    """Empty a draft campaign's list (to build it again)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != CampaignState.DRAFT:
            raise CampaignError(_("The list can be changed only while the campaign is a draft."))
        removed, _detail = CampaignTarget.objects.filter(campaign=locked).delete()
        events.push_progress(locked.pk)
    return removed


# --- state changes -------------------------------------------------------------------------------


def _check_ready(campaign: Campaign) -> None:
    if campaign.kind == CampaignKind.NOTIFICATION and not campaign.message.strip():
        raise CampaignError(_("A voice notification needs the text to speak."))
    if campaign.kind == CampaignKind.QUESTIONNAIRE and (
        campaign.questionnaire is None or campaign.questionnaire.published_at is None
    ):
        raise CampaignError(_("An automated questionnaire needs a published questionnaire."))
    if not CampaignTarget.objects.filter(campaign=campaign, state=TargetState.PENDING).exists():
        raise CampaignError(_("The campaign has nobody left to call."))


def start(
    campaign: Campaign, *, acting_user: User | None, now: dt.datetime | None = None
) -> Campaign:
    """draft → running. Automated campaigns schedule their first calls after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != CampaignState.DRAFT:
            raise CampaignError(_("Only a draft campaign can be started."))
        _check_ready(locked)
        locked.state = CampaignState.RUNNING
        locked.started_at = now
        locked.save(update_fields=["state", "started_at", "updated_at"])
        _after_running(locked)
    campaign.refresh_from_db()
    return campaign


def resume(
    campaign: Campaign, *, acting_user: User | None, now: dt.datetime | None = None
) -> Campaign:
    """paused → running."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != CampaignState.PAUSED:
            raise CampaignError(_("Only a paused campaign can be resumed."))
        locked.state = CampaignState.RUNNING
        locked.save(update_fields=["state", "updated_at"])
        _after_running(locked)
    campaign.refresh_from_db()
    return campaign


def _after_running(campaign: Campaign) -> None:
    events.push_progress(campaign.pk)
    if campaign.is_automated:
        campaign_id = campaign.pk
        transaction.on_commit(lambda: pump(campaign_id))


def _unschedule(campaign: Campaign, *, now: dt.datetime) -> list[int]:
    """Cancel the campaign's attempts not dialled yet; returns the ids of their targets."""
    targets = list(
        CampaignTarget.objects.select_for_update()
        .filter(
            campaign=campaign,
            state=TargetState.IN_PROGRESS,
            contact_attempt__state=AttemptState.SCHEDULED,
        )
        .values_list("pk", "contact_attempt_id")
    )
    attempt_ids = [attempt_id for _pk, attempt_id in targets]
    ContactAttempt.objects.filter(pk__in=attempt_ids, state=AttemptState.SCHEDULED).update(
        state=AttemptState.CANCELLED, reason=_("The campaign was paused or cancelled.")[:200]
    )
    return [pk for pk, _attempt in targets]


def pause(
    campaign: Campaign, *, acting_user: User | None, now: dt.datetime | None = None
) -> Campaign:
    """running → paused: calls not dialled yet are taken back (calls under way finish)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != CampaignState.RUNNING:
            raise CampaignError(_("Only a running campaign can be paused."))
        locked.state = CampaignState.PAUSED
        locked.save(update_fields=["state", "updated_at"])
        taken_back = _unschedule(locked, now=now)
        # A retry keeps its time; a first attempt goes back to the queue.
        for target in CampaignTarget.objects.filter(pk__in=taken_back).select_related(
            "contact_attempt"
        ):
            attempt = target.contact_attempt
            target.state = TargetState.PENDING
            target.next_attempt_at = attempt.not_before if attempt is not None else None
            target.contact_attempt = None
            target.save(update_fields=["state", "next_attempt_at", "contact_attempt", "updated_at"])
        CampaignTarget.objects.filter(
            campaign=locked, state=TargetState.IN_PROGRESS, claimed_by__isnull=False
        ).update(state=TargetState.PENDING, claimed_by=None, claimed_at=None, updated_at=now)
        events.push_progress(locked.pk)
    campaign.refresh_from_db()
    return campaign


def cancel(
    campaign: Campaign, *, acting_user: User | None, now: dt.datetime | None = None
) -> Campaign:
    """Stop for good: calls not dialled yet are cancelled and everyone not called is skipped."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state in (CampaignState.FINISHED, CampaignState.CANCELLED):
            raise CampaignError(_("This campaign is already over."))
        locked.state = CampaignState.CANCELLED
        locked.finished_at = now
        locked.save(update_fields=["state", "finished_at", "updated_at"])
        taken_back = _unschedule(locked, now=now)
        CampaignTarget.objects.filter(
            Q(pk__in=taken_back)
            | Q(state=TargetState.PENDING)
            | Q(state=TargetState.IN_PROGRESS, claimed_by__isnull=False),
            campaign=locked,
        ).update(
            state=TargetState.SKIPPED,
            skip_reason="cancelled",
            reason=_("The campaign was cancelled.")[:200],
            claimed_by=None,
            claimed_at=None,
            finished_at=now,
            updated_at=now,
        )
        events.push_progress(locked.pk)
    campaign.refresh_from_db()
    return campaign


def finish_if_done(campaign_id: int, *, now: dt.datetime | None = None) -> bool:
    """A running campaign with nobody left to call or waiting for a result is finished."""
    now = now or timezone.now()
    left = CampaignTarget.objects.filter(
        campaign_id=campaign_id, state__in=[TargetState.PENDING, TargetState.IN_PROGRESS]
    )
    if left.exists():
        return False
    finished = Campaign.objects.filter(pk=campaign_id, state=CampaignState.RUNNING).update(
        state=CampaignState.FINISHED, finished_at=now, updated_at=now
    )
    if finished:
        events.push_progress(campaign_id)
    return bool(finished)


# --- calling hours -------------------------------------------------------------------------------


def _hours(campaign: Campaign) -> ContactPolicy:
    """The campaign's windows with the hospital's holidays and make-up days (unsaved)."""
    hospital = policy.current_policy()
    return ContactPolicy(
        windows=campaign.windows, holidays=hospital.holidays, workdays=hospital.workdays
    )


def in_window(campaign: Campaign, now: dt.datetime) -> bool:
    return policy.in_contact_hours(now, _hours(campaign))


def next_window_time(campaign: Campaign, moment: dt.datetime) -> dt.datetime | None:
    """``moment`` when inside the campaign's hours, else their next opening."""
    return policy.next_contact_time(moment, _hours(campaign))


# --- what is said --------------------------------------------------------------------------------


def _salutation(patient: Patient) -> str:
    surname = patient.name[:1]
    if patient.sex == Sex.MALE:
        return f"{surname}先生"
    if patient.sex == Sex.FEMALE:
        return f"{surname}女士"
    return patient.name


def message_values(target: CampaignTarget, *, today: dt.date | None = None) -> dict[str, str]:
    """The placeholders of a notification: {姓名} {称呼} {科室} {日期} (the follow-up task's target
    date, else today) — spoken the Chinese way (careloop.outreach.speech)."""
    today = today or timezone.localdate()
    task = target.task
    department = task.department.name if task is not None else target.campaign.department.name
    day = task.target_date if task is not None else today
    return {
        "姓名": target.patient.name,
        "称呼": _salutation(target.patient),
        "科室": department,
        "日期": speech.say_date(day, today=today),
    }


def render_message(text: str, values: dict[str, str]) -> str:
    """Replace the placeholders; unknown ones stay as typed, braces never raise."""
    out = text
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


PLACEHOLDERS = ("{姓名}", "{称呼}", "{科室}", "{日期}")


def notification_flow() -> dict[str, Any]:
    """The flow of every voice notification: the text, once more on key 1, goodbye."""
    return {
        "format": "careloop-flow/1",
        "id": "campaign-notification",
        "version": 1,
        "name": "语音通知",
        "voice": "cmn",
        "start": "message",
        "settings": {"timezone": "Asia/Shanghai"},
        "nodes": {
            "message": {"type": "say", "say": "{{message}}", "next": "heard"},
            "heard": {"type": "set", "vars": {"outreach_result": "completed"}, "next": "again"},
            "again": {
                "type": "menu",
                "say": "重听请按1，结束请挂机。",
                "options": {"1": "message"},
                "timeout": 4,
                "max_attempts": 1,
                "no_input": {"silence": 100},
                "invalid": {"silence": 100},
                "on_failure": "bye",
            },
            "bye": {"type": "hangup", "say": "谢谢，再见。", "cause": "normal"},
        },
    }


def _flow_and_variables(target: CampaignTarget) -> tuple[dict[str, Any], dict[str, Any]]:
    from careloop.outreach import automated, flowgen

    campaign = target.campaign
    variables: dict[str, Any] = {
        "campaign_id": campaign.pk,
        "target_id": target.pk,
        "patient_name": automated.patient_greeting_name(target.patient),
    }
    if campaign.kind == CampaignKind.NOTIFICATION:
        variables["message"] = render_message(campaign.message, message_values(target))
        return notification_flow(), variables
    flow = flowgen.build_flow(
        campaign.questionnaire,
        hospital=automated.hospital_name(),
        department=campaign.department.name,
    )
    return flow, variables


# --- automated calls -----------------------------------------------------------------------------


def _schedule(target: CampaignTarget, *, not_before: dt.datetime | None) -> ContactAttempt:
    from careloop.outreach import dialler

    flow, variables = _flow_and_variables(target)
    campaign = target.campaign
    return dialler.schedule(
        target.patient,
        purpose=PURPOSE,
        channel=Channel.IVR,
        flow=flow,
        variables=variables,
        # A questionnaire answers the follow-up step (finishing the step elsewhere cancels the
        # call); a notification only borrows the task's date.
        task=target.task if campaign.kind == CampaignKind.QUESTIONNAIRE else None,
        not_before=not_before,
        data={
            "campaign_target": target.pk,
            "campaign": campaign.pk,
            "concurrency": campaign.concurrency,
        },
        attempt_no=target.attempts + 1,
    )


def pump(campaign_id: int, *, now: dt.datetime | None = None) -> int:
    """Hand the next pending patients of a running automated campaign to the dialler: at most
    ``calls_per_minute`` per run (one run a minute), spread over the minute, only inside the
    campaign's hours, and never more than a minute's worth waiting to be dialled. Idempotent;
    returns how many attempts it scheduled."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.state != CampaignState.RUNNING:
            return 0
        if not campaign.is_automated:
            return 0
        _skip_cancelled_elsewhere(campaign, now=now)
        if not in_window(campaign, now):
            return 0
        waiting = CampaignTarget.objects.filter(
            campaign=campaign,
            state=TargetState.IN_PROGRESS,
            contact_attempt__state=AttemptState.SCHEDULED,
            contact_attempt__not_before__lte=now + dt.timedelta(minutes=1),
        ).count()
        room = max(campaign.calls_per_minute - waiting, 0)
        due = list(
            CampaignTarget.objects.filter(campaign=campaign, state=TargetState.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .select_related("patient", "task__department", "campaign__department")
            .order_by("next_attempt_at", "pk")[:room]
        )
        spacing = dt.timedelta(seconds=60 / campaign.calls_per_minute)
        for index, target in enumerate(due):
            attempt = _schedule(target, not_before=now + spacing * index)
            target.state = TargetState.IN_PROGRESS
            target.contact_attempt = attempt
            target.next_attempt_at = None
            target.save(update_fields=["state", "contact_attempt", "next_attempt_at", "updated_at"])
        if due:
            events.push_progress(campaign.pk)
        else:
            finish_if_done(campaign.pk, now=now)
    return len(due)


def _skip_cancelled_elsewhere(campaign: Campaign, *, now: dt.datetime) -> int:
    """Attempts cancelled outside the campaign (the follow-up step was finished on another
    channel, the patient was blocked) leave their target skipped with the attempt's reason."""
    stale = list(
        CampaignTarget.objects.select_for_update(of=("self",))
        .filter(
            campaign=campaign,
            state=TargetState.IN_PROGRESS,
            contact_attempt__state=AttemptState.CANCELLED,
        )
        .select_related("contact_attempt")
    )
    for target in stale:
        attempt = target.contact_attempt
        _skip(target, "cancelled_elsewhere", attempt.reason if attempt else "", now=now)
        target.save(update_fields=["state", "skip_reason", "reason", "finished_at", "updated_at"])
    if stale:
        events.push_progress(campaign.pk)
    return len(stale)


def pump_all(*, now: dt.datetime | None = None) -> int:
    """``pump`` every running automated campaign (the minute job)."""
    ids = Campaign.objects.filter(
        state=CampaignState.RUNNING,
        kind__in=[CampaignKind.NOTIFICATION, CampaignKind.QUESTIONNAIRE],
    ).values_list("pk", flat=True)
    return sum(pump(pk, now=now) for pk in list(ids))


def _answers(campaign: Campaign, attempt: ContactAttempt) -> dict[str, Any]:
    """The questionnaire answers keyed in during the call (question key → value)."""
    from careloop.outreach import flowgen

    variables = (attempt.data or {}).get("variables") or {}
    answers, _unanswered = flowgen.answers_from_variables(campaign.questionnaire, variables)
    return answers


def attempt_ended(attempt: ContactAttempt, *, now: dt.datetime | None = None) -> None:
    """The dialler's result handler for purpose ``campaign``: move the target on.

    Reached → done (questionnaire answers saved in the same response model as the nurses');
    a result in the campaign's ``retry_on`` with attempts left → the next attempt is scheduled
    after ``retry_minutes``, inside the campaign's hours; otherwise failed. A call the contact
    policy refuses for good (deceased, do-not-contact, opted out) skips the target.
    """
    now = now or timezone.now()
    target_id = (attempt.data or {}).get("campaign_target")
    if not target_id:
        return
    with transaction.atomic():
        target = (
            CampaignTarget.objects.select_for_update(of=("self",))
            .select_related("campaign", "patient", "task")
            .filter(pk=target_id)
            .first()
        )
        if target is None or target.contact_attempt_id != attempt.pk:
            return  # an attempt taken back by pause/cancel, or a stale one
        if target.state != TargetState.IN_PROGRESS:
            return
        campaign = target.campaign
        result = (attempt.result or attempt.state or "").strip()
        target.attempts = max(target.attempts, attempt.attempt_no)
        target.last_result = result[:30]
        target.reason = (attempt.reason or "")[:200]
        fields = ["attempts", "last_result", "reason", "state", "updated_at"]
        if attempt.state in (AttemptState.BLOCKED, AttemptState.CANCELLED):
            refusal = policy.standing_refusal(target.patient, Channel.IVR)
            code = refusal.reason if refusal is not None else "blocked"
            _skip(target, code, attempt.reason or (refusal.message if refusal else ""), now=now)
            target.last_result = code
            fields += ["skip_reason", "finished_at"]
        elif result in DIAL_FAILURES or result in NOT_REACHED_ON_ANSWER:
            retry = (
                result in (campaign.retry_on or [])
                and target.attempts < campaign.max_attempts
                and campaign.state in (CampaignState.RUNNING, CampaignState.PAUSED)
            )
            if retry:
                when = next_window_time(
                    campaign, now + dt.timedelta(minutes=campaign.retry_minutes)
                )
                if campaign.state == CampaignState.RUNNING and when is not None:
                    target.contact_attempt = _schedule(target, not_before=when)
                    fields.append("contact_attempt")
                else:
                    target.state = TargetState.PENDING
                    target.next_attempt_at = when
                    target.contact_attempt = None
                    fields += ["next_attempt_at", "contact_attempt"]
            else:
                target.state = TargetState.FAILED
                target.finished_at = now
                fields.append("finished_at")
        else:
            target.state = TargetState.DONE
            target.finished_at = now
            fields.append("finished_at")
            if campaign.kind == CampaignKind.QUESTIONNAIRE:
                target.answers = _answers(campaign, attempt)
                fields.append("answers")
                _save_response(target, attempt)
        target.save(update_fields=fields)
        events.push_progress(campaign.pk)
        campaign_id = campaign.pk
        transaction.on_commit(lambda: finish_if_done(campaign_id))


def _save_response(target: CampaignTarget, attempt: ContactAttempt) -> None:
    """Answers of a reached patient go where the nurses' go: through the follow-up outcome when
    the target's task asks this questionnaire, else as a plain response. Bad answers are kept on
    the target and noted, never lost with the call."""
    from careloop.followup import services as followup
    from careloop.followup import states
    from careloop.surveys.choices import ResponseChannel
    from careloop.surveys.schema import AnswerError
    from careloop.surveys.services import SurveyError, submit_response

    version = target.campaign.questionnaire
    if version is None or not target.answers:
        return
    task = target.task
    try:
        with transaction.atomic():
            if (
                task is not None
                and task.status in states.OPEN
                and task.step.questionnaire_id == version.questionnaire_id
            ):
                followup.record_outcome(
                    task,
                    outcome=Outcome.REACHED,
                    answers=target.answers,
                    note=_("Automated questionnaire of campaign %(name)s")
                    % {"name": target.campaign.name},
                    acting_user=None,
                )
            else:
                submit_response(
                    version,
                    patient=target.patient,
                    answers=target.answers,
                    channel=ResponseChannel.IVR,
                    acting_user=None,
                )
    except (AnswerError, SurveyError, followup.FollowupError) as exc:
        log.warning("campaign target %s: answers not saved (%s)", target.pk, type(exc).__name__)
        target.reason = _("The answers could not be saved: %(error)s") % {"error": exc}


def connect() -> None:
    """Register ``attempt_ended`` with the dialler (AppConfig.ready)."""
    from careloop.outreach import dialler

    dialler.register_result_handler(PURPOSE, attempt_ended)


# --- preview dialling ----------------------------------------------------------------------------


def current_target(campaign: Campaign, user: User) -> CampaignTarget | None:
    """The preview target ``user`` holds in this campaign, if any."""
    return (
        CampaignTarget.objects.filter(
            campaign=campaign, state=TargetState.IN_PROGRESS, claimed_by=user
        )
        .select_related("patient", "task")
        .first()
    )


def claim_next(
    campaign: Campaign, *, acting_user: User, now: dt.datetime | None = None
) -> CampaignTarget | None:
    """Give the nurse her current target, else take the next pending one. Two nurses never get
    the same target: the claim is a conditional UPDATE that only one of them wins. Patients the
    policy forbids for good are skipped on the way; those in quiet hours or over their caps wait."""
    now = now or timezone.now()
    if campaign.state != CampaignState.RUNNING or campaign.kind != CampaignKind.PREVIEW:
        return None
    held = current_target(campaign, acting_user)
    if held is not None:
        return held
    lapsed = now - CLAIM_TIMEOUT
    candidates = (
        CampaignTarget.objects.filter(campaign=campaign)
        .filter(
            Q(state=TargetState.PENDING)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            | Q(state=TargetState.IN_PROGRESS, claimed_at__lt=lapsed)
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "state", "claimed_at")
    )
    for pk, state, claimed_at in candidates[:50]:
        won = CampaignTarget.objects.filter(pk=pk, state=state, claimed_at=claimed_at).update(
            state=TargetState.IN_PROGRESS,
            claimed_by=acting_user,
            claimed_at=now,
            updated_at=now,
        )
        if not won:
            continue
        target = CampaignTarget.objects.select_related("patient", "task").get(pk=pk)
        decision = policy.may_contact(target.patient, Channel.PHONE, now=now, purpose=PURPOSE)
        if decision.allowed:
            events.push_progress(campaign.pk)
            return target
        _release_refused(target, decision, now=now)
    finish_if_done(campaign.pk, now=now)
    return None


def _release_refused(
    target: CampaignTarget, decision: policy.Decision, *, now: dt.datetime
) -> None:
    if decision.permanent:
        _skip(target, decision.reason, decision.message, now=now)
    else:
        target.state = TargetState.PENDING
        target.next_attempt_at = decision.retry_at
        target.reason = decision.message[:200]
    target.claimed_by = None
    target.claimed_at = None
    target.save()
    events.push_progress(target.campaign_id)


def _held(target: CampaignTarget, user: User) -> CampaignTarget:
    locked = (
        CampaignTarget.objects.select_for_update(of=("self",))
        .select_related("campaign", "task", "patient")
        .get(pk=target.pk)
    )
    if locked.state != TargetState.IN_PROGRESS or locked.claimed_by_id != user.pk:
        raise CampaignError(_("This patient is no longer yours to call."))
    return locked


def skip_target(
    target: CampaignTarget, *, acting_user: User, reason: str = "", now: dt.datetime | None = None
) -> CampaignTarget:
    """The nurse passes on the patient she holds: skipped, with her reason."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _held(target, acting_user)
        _skip(locked, "skipped_by_nurse", reason or _("Skipped by the nurse."), now=now)
        locked.claimed_by = None
        locked.claimed_at = None
        locked.save()
        events.push_progress(locked.campaign_id)
        campaign_id = locked.campaign_id
        transaction.on_commit(lambda: finish_if_done(campaign_id))
    return locked


#: A nurse's outcome → the target's state (busy and no answer may be retried).
_PREVIEW_RETRY = {Outcome.BUSY.value: "busy", Outcome.NO_ANSWER.value: "no_answer"}


def record_preview_outcome(
    target: CampaignTarget,
    *,
    outcome: str,
    answers: dict[str, Any] | None = None,
    note: str = "",
    callback_at: dt.datetime | None = None,
    acting_user: User,
    now: dt.datetime | None = None,
) -> CampaignTarget:
    """The outcome of the nurse's call. A target with an open follow-up task records it through
    ``followup.services.record_outcome`` (answers and all); busy / no answer are retried after the
    campaign's interval while attempts remain; call back later waits until ``callback_at``."""
    from careloop.followup import services as followup
    from careloop.followup import states

    now = now or timezone.now()
    with transaction.atomic():
        locked = _held(target, acting_user)
        campaign = locked.campaign
        task = locked.task
        if task is not None and task.status in states.OPEN:
            followup.record_outcome(
                task,
                outcome=outcome,
                answers=answers,
                note=note,
                callback_at=callback_at,
                acting_user=acting_user,
                now=now,
            )
        elif outcome == Outcome.CALL_BACK and (callback_at is None or callback_at <= now):
            raise CampaignError(_("Give the time to call back."))
        elif outcome == Outcome.REACHED and answers and campaign.questionnaire is not None:
            from careloop.surveys.choices import ResponseChannel
            from careloop.surveys.services import submit_response

            submit_response(
                campaign.questionnaire,
                patient=locked.patient,
                answers=answers,
                channel=ResponseChannel.AGENT,
                acting_user=acting_user,
            )
        locked.attempts += 1
        locked.last_result = outcome
        locked.reason = note[:200]
        locked.claimed_by = None
        locked.claimed_at = None
        if outcome == Outcome.REACHED:
            locked.state = TargetState.DONE
            locked.answers = answers or {}
            locked.finished_at = now
        elif outcome == Outcome.CALL_BACK:
            locked.state = TargetState.PENDING
            locked.next_attempt_at = callback_at
        elif (
            _PREVIEW_RETRY.get(outcome) in (campaign.retry_on or [])
            and locked.attempts < campaign.max_attempts
        ):
            locked.state = TargetState.PENDING
            locked.next_attempt_at = now + dt.timedelta(minutes=campaign.retry_minutes)
        else:
            locked.state = TargetState.FAILED
            locked.finished_at = now
        locked.save()
        events.push_progress(campaign.pk)
        campaign_id = campaign.pk
        transaction.on_commit(lambda: finish_if_done(campaign_id))
    return locked
