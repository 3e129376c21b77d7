"""Putting a patient who pressed 0 in an automated call through to the follow-up team.

The automated call's flow ends in a ``route`` node (queue ``followup``): the engine plays music
on hold and publishes ``call.routed``. ``start`` picks a nurse — the task's assignee when her
phone is set up, else a member of the plan's team, else anyone with a phone in the task's
department (registered phones first) — rings her phone with ``app_data.outreach_handover`` and
remembers the choice on the attempt (``data["handover"]``) and on the attempt's
``contactcenter.Call`` (``agent``, ``agent_leg_id``). Her browser gets the screen pop of the task.
When she answers, both legs are bridged (the patient's leg is already recorded from the start of
the automated call, so the recording holds the IVR part and the conversation); when either hangs
up the other is hung up. If nobody answers within the ring time the patient hears the flow's
"护士正忙" goodbye (the route's timeout) or is hung up, and the step goes to a nurse.

Events of the nurse's leg are applied here (``handle_event``, called by the outreach hook before
the contact center sees them); the patient's leg stays the automated call's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from careloop.contactcenter import events as cc_events
from careloop.contactcenter.choices import CallState, Leg, PhoneKind
from careloop.contactcenter.models import AgentPhone, Call, CallEvent
from careloop.contactcenter.services import ring_timeout
from careloop.outreach.choices import AttemptState

log = logging.getLogger(__name__)


def _pick_phone(task: Any) -> AgentPhone | None:
    """The nurse to ring for a task's patient (see the module docstring)."""
    if task is None:
        return None
    if task.assignee_id:
        phone = AgentPhone.objects.filter(user_id=task.assignee_id, user__is_active=True).first()
        if phone is not None:
            return phone
    phones = AgentPhone.objects.filter(user__is_active=True).select_related("user")
    candidates = []
    if task.plan.team_id:
        candidates = list(phones.filter(user__teams=task.plan.team_id))
    if not candidates:
        candidates = list(phones.filter(user__departments=task.department_id))
    now = timezone.now()

    def rank(phone: AgentPhone) -> tuple[int, int]:
        registered = phone.kind == PhoneKind.FIXED or (
            phone.registration_expires_at is not None and phone.registration_expires_at > now
        )
        return (0 if registered else 1, phone.user_id)

    candidates.sort(key=rank)
    return candidates[0] if candidates else None


def start(attempt: Any, event: dict[str, Any], actions: list[Any]) -> None:
    """``call.routed`` of an automated call (inside the webhook's transaction)."""
    data = dict(attempt.data or {})
    if data.get("handover"):
        return  # a batch sent again
    phone = _pick_phone(attempt.task)
    data["handover"] = {"agent": phone.user_id if phone else None, "answered_by": None}
    attempt.data = data
    attempt.save(update_fields=["data"])
    if phone is None:
        log.info("attempt %s: no nurse phone for the handover", attempt.pk)
        return  # the route times out into the flow's goodbye
    call_id = attempt.call_id
    Call.objects.filter(pk=call_id).update(agent=phone.user)
    if attempt.task_id:
        cc_events.push_screen_pop(phone.user_id, f"/followup/tasks/{attempt.task_id}/", call_id)
    uri, attempt_id = phone.uri, attempt.pk

    def ring() -> None:
        from careloop.contactcenter.engine_client import EngineError, client

        try:
            leg = client().originate(
                uri,
                ring_timeout=ring_timeout(),
                app_data={"outreach_handover": attempt_id, "leg": Leg.AGENT},
            )
        except EngineError as exc:
            log.warning("attempt %s: ringing the nurse failed (%s)", attempt_id, exc.code)
            return
        Call.objects.filter(pk=call_id, agent_leg_id="").update(agent_leg_id=leg["call_id"])

    actions.append(ring)


def _attempt_for(event: dict[str, Any]) -> Any:
    from careloop.outreach.models import ContactAttempt

    data = event.get("data") or {}
    leg_id = str(event.get("call_id") or "")
    if event.get("type") == "call.created":
        app = data.get("app_data") or {}
        if "outreach_handover" not in app:
            return None
        attempt = (
            ContactAttempt.objects.select_for_update().filter(pk=app["outreach_handover"]).first()
        )
        if attempt is not None and attempt.call_id:
            Call.objects.filter(pk=attempt.call_id, agent_leg_id="").update(agent_leg_id=leg_id)
        return attempt
    if not leg_id:
        return None
    call = Call.objects.filter(agent_leg_id=leg_id, agent__isnull=False).first()
    if call is None:
        return None
    for attempt in ContactAttempt.objects.select_for_update().filter(call=call):
        if "handover" in (attempt.data or {}):  # a nurse's own calls are the contact center's
            return attempt
    return None


def handle_event(event: dict[str, Any]) -> bool:
    """Events of a nurse's leg rung for an automated call; True when it was one."""
    actions: list[Any] = []
    with transaction.atomic():
        attempt = _attempt_for(event)
        if attempt is None:
            return False
        call = Call.objects.select_for_update().get(pk=attempt.call_id)
        kind = str(event.get("type", ""))
        seq = int(event.get("seq") or 0)
        at = parse_datetime(str(event.get("ts", ""))) or timezone.now()
        if CallEvent.objects.filter(call=call, seq=seq, type=kind[:40], at=at).exists():
            return True
        data = event.get("data") or {}
        logged = {k: data[k] for k in ("cause", "sip_code", "hangup_by") if k in data}
        CallEvent.objects.create(
            call=call, seq=seq, type=kind[:40], leg=Leg.AGENT, data=logged, at=at
        )
        if kind == "call.answered" and attempt.state == AttemptState.ANSWERED:
            call.agent_answered_at = at
            call.state = CallState.TALKING
            call.save(update_fields=["agent_answered_at", "state"])
            handed = dict((attempt.data or {}).get("handover") or {})
            handed["answered_by"] = call.agent_id
            attempt.data = {**(attempt.data or {}), "handover": handed}
            attempt.save(update_fields=["data"])
            task_id, nurse_id = attempt.task_id, call.agent_id
            agent_leg, patient_leg, call_pk = call.agent_leg_id, attempt.leg_id, call.pk
            actions.append(lambda: _bridge(call_pk, agent_leg, patient_leg))
            if task_id and nurse_id:
                actions.append(lambda: _give_task(task_id, nurse_id))
        elif kind == "call.answered":
            other = str(event.get("call_id") or "")
            actions.append(lambda: _hangup(other))  # the patient is gone already
        elif kind == "call.ended":
            patient_leg = attempt.leg_id
            if call.agent_answered_at is not None:
                actions.append(lambda: _hangup(patient_leg))
        cc_events.push_call(call)
    for action in actions:
        action()
    return True


def _bridge(call_pk: int, agent_leg: str, patient_leg: str) -> None:
    from careloop.contactcenter.engine_client import EngineError, client

    try:
        bridge = client().bridge([patient_leg, agent_leg], record=False, hangup_on_exit=True)
    except EngineError as exc:
        log.warning("handover of call %s: bridging failed (%s)", call_pk, exc.code)
        _hangup(agent_leg)
        return
    Call.objects.filter(pk=call_pk).update(bridge_id=bridge["bridge_id"])


def _give_task(task_id: int, nurse_id: int) -> None:
    from careloop.accounts.models import User
    from careloop.followup import services
    from careloop.followup.models import Task

    task = Task.objects.filter(pk=task_id).first()
    nurse = User.objects.filter(pk=nurse_id).first()
    if task is not None and nurse is not None:
        from careloop.outreach.automated import handover_reason

        services.hand_to_nurse(task, reason=handover_reason(), assignee=nurse)


def _hangup(leg_id: str) -> None:
    from careloop.contactcenter.engine_client import EngineError, client

    if leg_id:
        try:
            client().hangup(leg_id)
        except EngineError:
            pass
