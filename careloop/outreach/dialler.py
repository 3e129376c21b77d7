"""The dialler: the one place that places automated calls (issue 4 items 4, 5, 8).

Follow-up steps with the channel "automated call" (``careloop/outreach/automated.py``),
campaigns (``careloop/campaigns``) and reminders all put their calls here. Each call is a
``ContactAttempt`` (``scheduled`` → ``dialing`` → ``answered`` → ``ended``, or ``blocked`` /
``cancelled``), and every attempt passes the contact policy (``policy.begin_contact``) at the
moment it is dialled — never earlier, never by the caller.

Public API
----------

``schedule(patient, *, purpose, channel="ivr", flow, variables, task=None, reminder=None,
not_before=None, priority=0, data=None, user=None, attempt_no=1) -> ContactAttempt``
    A new attempt in state ``scheduled``. ``flow`` is a ``careloop-flow/1`` document (sent
    inline with the call; docs/engine.md#ivr-flows), ``variables`` what the flow's templates
    see. ``data`` is the caller's own (e.g. ``{"campaign": 12, "campaign_target": 345}``); two
    keys mean something to the dialler: ``campaign`` (an id) with ``concurrency`` (that
    campaign's own lower limit of calls at once). The dialler adds ``flow``, ``flow_variables``,
    and when the call is over ``variables`` (what the flow stored), ``outcome`` (the flow's
    outcome), ``dial_result`` and ``sip_code``.

``register_result_handler(purpose, fn)``
    ``fn(attempt)`` runs after commit whenever an attempt of ``purpose`` is over: ended (look at
    ``attempt.result`` and ``attempt.data["variables"]``) or refused for good by the policy
    (``attempt.state == "blocked"``, ``attempt.reason`` readable). Retrying is the purpose's
    decision: the handler schedules the next attempt (``attempt_no + 1``) if it wants one.

``dispatch(now=None) -> int``
    Run every minute (``jobs.dispatch_job``) and again whenever an automated call ends. First
    cancels scheduled contacts of finished follow-up steps, then dials the due attempts
    (``not_before`` passed, highest ``priority`` first, then the oldest ``not_before``), never
    more than ``ContactPolicy.automated_concurrency`` calls up at once (and never more than a
    campaign's ``data["concurrency"]`` of that campaign). A policy refusal with a time to try
    again moves ``not_before`` there (the reason is kept on the attempt); a permanent refusal
    blocks the attempt and tells the purpose's handler. An unreachable engine puts the attempt
    back with a short delay. Returns how many calls were placed.

``cancel(attempt, reason)``
    Cancel a scheduled attempt (a campaign stopped, a reminder withdrawn).

Results
-------

``attempt.result`` is the engine's dial result when the patient did not answer (``busy``,
``no_answer``, ``rejected``, ``unreachable``, ``failed``), else what the flow said: a flow sets
the variable ``outreach_result`` (e.g. ``completed``, ``opted_out``, ``no_consent``,
``to_nurse``) and the dialler copies it; an answered call whose flow did not set it ends as
``hung_up`` (the patient hung up first) or ``answered``.

Each call also gets a ``contactcenter.Call`` without an agent, so its recording plays in the
browser (audited), lists on the task and on the patient's timeline like any other call.
The engine's events for these calls are applied by ``careloop/outreach/events.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.contactcenter.choices import CallState, Direction
from careloop.contactcenter.engine_client import EngineError, client
from careloop.contactcenter.models import Call
from careloop.contactcenter.services import dial_target
from careloop.followup.choices import Channel
from careloop.outreach import policy
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt, ContactPolicy
from careloop.patients.models import Patient

log = logging.getLogger(__name__)

ResultHandler = Callable[[ContactAttempt], None]
_handlers: dict[str, ResultHandler] = {}

#: States of a call that is up (counts against the concurrency limits).
ACTIVE_STATES = (AttemptState.DIALING, AttemptState.ANSWERED)
#: How long an attempt waits when the engine could not be reached.
ENGINE_RETRY = dt.timedelta(minutes=2)
#: Dial results of a call nobody answered (``attempt.result``).
NOT_ANSWERED = frozenset({"busy", "no_answer", "rejected", "unreachable", "failed"})
#: Calls placed per ``dispatch`` at most (the minute job comes back for the rest).
BATCH = 200


# --- scheduling ---------------------------------------------------------------------------------


def schedule(
    patient: Patient,
    *,
    purpose: str,
    channel: str = Channel.IVR,
    flow: dict[str, Any],
    variables: dict[str, Any],
    task: Any = None,
    reminder: Any = None,
    not_before: dt.datetime | None = None,
    priority: int = 0,
    data: dict[str, Any] | None = None,
    user: Any = None,
    attempt_no: int = 1,
) -> ContactAttempt:
    """A scheduled automated contact (see the module docstring)."""
    now = timezone.now()
    payload = dict(data or {})
    payload["flow"] = flow
    payload["flow_variables"] = dict(variables)
    return ContactAttempt.objects.create(
        patient=patient,
        channel=channel,
        purpose=purpose,
        state=AttemptState.SCHEDULED,
        task=task,
        reminder=reminder,
        attempt_no=attempt_no,
        priority=priority,
        not_before=not_before or now,
        data=payload,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_at=now,
    )


def cancel(attempt: ContactAttempt, reason: str) -> bool:
    """Cancel a scheduled attempt; False when it was no longer scheduled."""
    return bool(
        ContactAttempt.objects.filter(pk=attempt.pk, state=AttemptState.SCHEDULED).update(
            state=AttemptState.CANCELLED, reason=reason[:200]
        )
    )


def register_result_handler(purpose: str, fn: ResultHandler) -> None:
    """``fn(attempt)`` is called after commit when an attempt of ``purpose`` ends or is blocked."""
    _handlers[str(purpose)] = fn


def _notify(attempt_id: int) -> None:
    attempt = ContactAttempt.objects.select_related("patient", "task").get(pk=attempt_id)
    handler = _handlers.get(attempt.purpose)
    if handler is None:
        return
    try:
        handler(attempt)
    except Exception:  # one purpose's bug must not stop the webhook or the dispatcher
        log.exception("result handler for %s failed on attempt %s", attempt.purpose, attempt_id)
    mark_handled(attempt_id)


#: Between an attempt's end and its handler (after commit) a purpose must not schedule the same
#: contact again; ``unhandled_recently`` tells it the result is on its way.
HANDLED_KEY = "handled"
HANDLER_GRACE = dt.timedelta(minutes=10)


def mark_handled(attempt_id: int) -> None:
    with transaction.atomic():
        attempt = ContactAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if attempt is not None and HANDLED_KEY not in (attempt.data or {}):
            attempt.data = {**(attempt.data or {}), HANDLED_KEY: timezone.now().isoformat()}
            attempt.save(update_fields=["data"])


def unhandled_recently(now: dt.datetime) -> Any:
    """Attempts that ended in the last minutes whose result handler has not run yet."""
    return ContactAttempt.objects.filter(
        state=AttemptState.ENDED, ended_at__gte=now - HANDLER_GRACE
    ).exclude(data__has_key=HANDLED_KEY)


def notify_on_commit(attempt: ContactAttempt) -> None:
    attempt_id = attempt.pk
    transaction.on_commit(lambda: _notify(attempt_id))


# --- dialling -----------------------------------------------------------------------------------


def active_attempts() -> Any:
    """Automated calls up now (dialled by this dialler, not yet ended)."""
    return ContactAttempt.objects.filter(channel=Channel.IVR, state__in=ACTIVE_STATES)


def _campaign_full(attempt: ContactAttempt, counts: dict[Any, int]) -> bool:
    campaign = (attempt.data or {}).get("campaign")
    limit = (attempt.data or {}).get("concurrency")
    if campaign is None or not limit:
        return False
    if campaign not in counts:
        counts[campaign] = active_attempts().filter(data__campaign=campaign).count()
    return counts[campaign] >= int(limit)


def _claim(now: dt.datetime) -> list[ContactAttempt]:
    """Lock the dialler (the policy row) and claim the due attempts the policy allows, as many
    as there are free places: each is marked ``dialing`` and gets its ``contactcenter.Call``.
    Refusals met on the way are rescheduled or blocked. One transaction for the whole batch:
    the calls are then placed without holding it (the engine's first webhooks arrive at once)."""
    claimed: list[ContactAttempt] = []
    with transaction.atomic():
        rules = ContactPolicy.objects.select_for_update().filter(pk=1).first()
        if rules is None:
            rules = policy.current_policy()
        free = rules.automated_concurrency - active_attempts().count()
        if free <= 0:
            return []
        due = (
            ContactAttempt.objects.filter(state=AttemptState.SCHEDULED, channel=Channel.IVR)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .select_related("patient")
            .order_by("-priority", "not_before", "pk")
        )
        campaign_counts: dict[Any, int] = {}
        for attempt in list(due[:BATCH]):
            if len(claimed) >= min(free, BATCH):
                break
            if _campaign_full(attempt, campaign_counts):
                continue
            if not attempt.patient.phone:
                attempt.state = AttemptState.BLOCKED
                attempt.reason = _("The patient has no phone number.")
                attempt.save(update_fields=["state", "reason"])
                notify_on_commit(attempt)
                continue
            try:
                policy.begin_contact(
                    attempt.patient,
                    attempt.channel,
                    purpose=attempt.purpose,
                    task=attempt.task,
                    now=now,
                    attempt=attempt,
                )
            except policy.ContactRefused as refused:
                decision = refused.decision
                attempt.reason = decision.message[:200]
                if decision.retry_at is not None:
                    attempt.not_before = decision.retry_at
                    attempt.save(update_fields=["not_before", "reason"])
                else:
                    attempt.state = AttemptState.BLOCKED
                    attempt.save(update_fields=["state", "reason"])
                    notify_on_commit(attempt)
                continue
            campaign = (attempt.data or {}).get("campaign")
            if campaign is not None and campaign in campaign_counts:
                campaign_counts[campaign] += 1
            attempt.call = Call.objects.create(
                direction=Direction.OUTBOUND,
                state=CallState.RINGING_PATIENT,
                agent=None,
                patient_id=attempt.patient_id,
                task_id=attempt.task_id,
                created_at=now,
            )
            attempt.save(update_fields=["call"])
            claimed.append(attempt)
    return claimed


def _originate(attempt: ContactAttempt, ring_timeout: int) -> dict[str, Any] | EngineError:
    """Ask the engine to place the call (no database work: see ``_claim``)."""
    data = attempt.data or {}
    try:
        return client().originate_flow(
            dial_target(attempt.patient.phone),
            flow=data.get("flow") or {},
            variables=dict(data.get("flow_variables") or {}),
            app_data={"outreach_attempt": attempt.pk},
            ring_timeout=ring_timeout,
        )
    except EngineError as exc:
        return exc


def _put_back(attempt: ContactAttempt, exc: EngineError, now: dt.datetime) -> None:
    """The engine could not be reached: the attempt waits a little, uncounted."""
    log.warning("attempt %s: engine not reachable (%s); retrying later", attempt.pk, exc.code)
    ContactAttempt.objects.filter(pk=attempt.pk, state=AttemptState.DIALING).update(
        state=AttemptState.SCHEDULED,
        started_at=None,
        call=None,
        not_before=now + ENGINE_RETRY,
        reason=_("The telephone system could not be reached (%(code)s).") % {"code": exc.code},
    )
    Call.objects.filter(pk=attempt.call_id).delete()


def _refused(attempt: ContactAttempt, exc: EngineError, now: dt.datetime) -> None:
    log.warning("attempt %s: the engine refused the call (%s)", attempt.pk, exc.code)
    with transaction.atomic():
        Call.objects.filter(pk=attempt.call_id).update(
            state=CallState.ENDED, ended_at=now, cause=f"engine_{exc.code}"[:30]
        )
        locked = ContactAttempt.objects.select_for_update().get(pk=attempt.pk)
        finish(
            locked,
            result="failed",
            reason=_("The telephone system refused the call (%(code)s).") % {"code": exc.code},
            now=now,
        )


ENGINE_DOWN = frozenset({"unreachable", "unavailable", "internal", "http_error"})


def dispatch(now: dt.datetime | None = None) -> int:
    """Dial what is due, within the policy and the concurrency limits; returns calls placed."""
    now = now or timezone.now()
    policy.cancel_finished_tasks_attempts()
    claimed = _claim(now)
    if not claimed:
        return 0
    ring_timeout = int(policy.current_policy().ring_timeout)
    placed = 0
    down: EngineError | None = None
    for attempt in claimed:
        result = down or _originate(attempt, ring_timeout)
        if isinstance(result, EngineError):
            if result.code in ENGINE_DOWN:
                down = result  # the rest of the batch waits too
                _put_back(attempt, result, now)
            else:
                _refused(attempt, result, now)
            continue
        leg_id = str(result.get("call_id") or "")
        # The engine's call.created webhook stores the leg too; whichever comes first wins.
        ContactAttempt.objects.filter(pk=attempt.pk, leg_id="").update(leg_id=leg_id)
        Call.objects.filter(pk=attempt.call_id, patient_leg_id="").update(patient_leg_id=leg_id)
        log.info("attempt %s dialled (purpose %s)", attempt.pk, attempt.purpose)
        placed += 1
    return placed


# --- the end of a call --------------------------------------------------------------------------


def finish(
    attempt: ContactAttempt, *, result: str, reason: str = "", now: dt.datetime | None = None
) -> bool:
    """End a dialling/answered attempt (call inside a transaction with the row locked); the
    purpose's handler runs after commit and the dispatcher is woken. False if already over."""
    if attempt.state not in ACTIVE_STATES:
        return False
    policy.end_contact(attempt, result=result, reason=reason, now=now)
    notify_on_commit(attempt)
    transaction.on_commit(wake)
    return True


def wake() -> None:
    """Dispatch again soon (a call ended: the line keeps moving)."""
    try:
        from careloop.outreach.jobs import dispatch_soon

        dispatch_soon()
    except Exception as exc:  # the minute job will come anyway
        log.warning("dispatcher not woken: %s", type(exc).__name__)


def reconcile(
    *, older_than: dt.timedelta = dt.timedelta(minutes=30), now: dt.datetime | None = None
) -> int:
    """End attempts whose call the engine no longer knows (events lost): they would hold a place
    in the concurrency limit for ever. Returns how many. An unreachable engine changes nothing."""
    now = now or timezone.now()
    engine = client()
    ended = 0
    stale = active_attempts().filter(started_at__lt=now - older_than)
    for attempt in list(stale):
        if attempt.leg_id:
            try:
                state = engine.get_call(attempt.leg_id).get("state")
            except EngineError as exc:
                if exc.code != "not_found":
                    return ended
                state = "ended"
            if state != "ended":
                continue
        with transaction.atomic():
            locked = ContactAttempt.objects.select_for_update().get(pk=attempt.pk)
            reason = _("The call's end was never reported.")
            if finish(locked, result="failed", reason=reason, now=now):
                ended += 1
            if locked.call_id:
                Call.objects.filter(pk=locked.call_id).exclude(state=CallState.ENDED).update(
                    state=CallState.ENDED, ended_at=now, cause="lost"
                )
    return ended
