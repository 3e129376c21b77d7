"""Engine events of automated calls (registered with ``contactcenter.hooks`` in ``apps.py``).

An attempt's leg is found by ``app_data.outreach_attempt`` on ``call.created`` (which also stores
the leg id, in case the event arrives before ``dispatch`` has saved it), then by ``leg_id``. A
nurse's leg rung for a patient who pressed 0 carries ``app_data.outreach_handover`` and is
handled by ``careloop/contactcenter/handover.py``.

* ``call.answered`` → the attempt is ``answered``; the leg is recorded (both directions);
* ``flow.finished`` → the flow's variables (without the caller/callee numbers) and its outcome
  are kept on the attempt;
* ``call.routed`` → the patient pressed 0: put through to the follow-up team (handover.py);
* ``call.ended`` / ``cdr`` → the attempt ends with the dial result, or with what the flow said
  (``outreach_result``); the purpose's result handler runs after commit;
* ``recording.finished`` → a ``contactcenter.Recording`` of the attempt's call, so it plays in
  the browser (audited) and is attached to the follow-up record the call produced.

Every event is also logged as a ``contactcenter.CallEvent`` of the attempt's call (without
numbers). A webhook batch sent twice changes nothing the second time: the attempt only moves
forward (answered once, ended once), recordings are keyed by their id, and events already
logged are skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from careloop.contactcenter.choices import CallState, Leg
from careloop.contactcenter.models import Call, CallEvent, Recording
from careloop.outreach import dialler
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt

log = logging.getLogger(__name__)

#: Flow variables never stored (phone numbers).
PRIVATE_VARIABLES = frozenset({"caller", "callee"})
_LOGGED = (
    "direction",
    "cause",
    "sip_code",
    "hangup_by",
    "recording_id",
    "duration",
    "mode",
    "partial",
    "reason",
    "flow_id",
    "outcome",
    "node",
)


def _event_time(event: dict[str, Any]) -> dt.datetime:
    return parse_datetime(str(event.get("ts", ""))) or timezone.now()


def _find_attempt(event: dict[str, Any]) -> ContactAttempt | None:
    leg_id = str(event.get("call_id") or "")
    data = event.get("data") or {}
    if event.get("type") == "call.created":
        app = data.get("app_data") or {}
        if "outreach_attempt" in app:
            attempt = (
                ContactAttempt.objects.select_for_update()
                .filter(pk=app["outreach_attempt"])
                .first()
            )
            if attempt is not None and not attempt.leg_id and leg_id:
                attempt.leg_id = leg_id
                attempt.save(update_fields=["leg_id"])
                if attempt.call_id:
                    Call.objects.filter(pk=attempt.call_id, patient_leg_id="").update(
                        patient_leg_id=leg_id
                    )
            return attempt
        return None
    if not leg_id:
        return None
    for attempt in ContactAttempt.objects.select_for_update().filter(leg_id=leg_id):
        if "flow" in (attempt.data or {}):  # placed by the dialler (not a nurse's call)
            return attempt
    return None


def handle_event(event: dict[str, Any]) -> bool:
    """The hook: True when the event is about an automated call (or its handover)."""
    from careloop.contactcenter import handover

    if handover.handle_event(event):
        return True
    actions: list[Any] = []
    with transaction.atomic():
        attempt = _find_attempt(event)
        if attempt is None:
            return False
        _apply(attempt, event, actions)
    for action in actions:
        try:
            action()
        except Exception:
            log.exception("attempt %s: follow-up action failed", attempt.pk)
    return True


def _log_event(call: Call | None, event: dict[str, Any], leg: str) -> bool:
    """Log the event on the call; False when it was logged already (a batch sent again)."""
    if call is None:
        return True
    kind = str(event.get("type", ""))[:40]
    seq, at = int(event.get("seq") or 0), _event_time(event)
    if CallEvent.objects.filter(call=call, seq=seq, type=kind, at=at).exists():
        return False
    data = event.get("data") or {}
    if kind == "cdr":
        record = data.get("record") or {}
        logged = {
            k: record.get(k)
            for k in (
                "leg_id",
                "start",
                "answer",
                "end",
                "duration",
                "billsec",
                "cause",
                "sip_code",
                "dial_result",
            )
        }
    else:
        logged = {k: data[k] for k in _LOGGED if k in data}
    CallEvent.objects.create(call=call, seq=seq, type=kind, leg=leg, data=logged, at=at)
    return True


def _apply(attempt: ContactAttempt, event: dict[str, Any], actions: list[Any]) -> None:
    kind = event.get("type", "")
    data = event.get("data") or {}
    call = Call.objects.select_for_update().filter(pk=attempt.call_id).first()
    if not _log_event(call, event, Leg.PATIENT):
        return
    at = _event_time(event)
    if kind == "call.answered":
        if attempt.state == AttemptState.DIALING:
            attempt.state = AttemptState.ANSWERED
            attempt.answered_at = at
            attempt.save(update_fields=["state", "answered_at"])
            leg_id = attempt.leg_id
            actions.append(lambda: _record(leg_id))
        if call is not None and call.state != CallState.ENDED:
            call.state, call.answered_at = CallState.TALKING, call.answered_at or at
            call.save(update_fields=["state", "answered_at"])
    elif kind == "flow.finished":
        variables = {
            k: v for k, v in (data.get("variables") or {}).items() if k not in PRIVATE_VARIABLES
        }
        attempt.data = {
            **(attempt.data or {}),
            "variables": variables,
            "outcome": str(data.get("outcome") or ""),
        }
        attempt.save(update_fields=["data"])
        _maybe_finish(attempt, at)
    elif kind == "call.routed":
        from careloop.contactcenter import handover

        handover.start(attempt, event, actions)
    elif kind == "call.ended":
        attempt.data = {
            **(attempt.data or {}),
            "ended": True,
            "cause": str(data.get("cause") or ""),
            "sip_code": data.get("sip_code"),
        }
        if attempt.state == AttemptState.DIALING and _dial_result(data):
            attempt.data["dial_result"] = _dial_result(data)
        attempt.save(update_fields=["data"])
        if call is not None and call.state != CallState.ENDED:
            call.state, call.ended_at = CallState.ENDED, at
            call.cause = str(data.get("cause") or "")[:30]
            call.sip_code = data.get("sip_code")
            call.save(update_fields=["state", "ended_at", "cause", "sip_code"])
        _maybe_finish(attempt, at)
    elif kind == "cdr":
        record = data.get("record") or {}
        result = str(record.get("dial_result") or "failed")
        if call is not None:
            call.dial_result = result[:20]
            fields = ["dial_result"]
            if call.state != CallState.ENDED:
                call.state, call.ended_at = CallState.ENDED, at
                call.cause = str(record.get("cause") or "")[:30]
                fields += ["state", "ended_at", "cause"]
            call.save(update_fields=fields)
        attempt.data = {
            **(attempt.data or {}),
            "ended": True,
            "dial_result": result,
            "sip_code": record.get("sip_code"),
        }
        attempt.save(update_fields=["data"])
        _maybe_finish(attempt, at)
    elif kind == "recording.finished" and call is not None:
        record_id = (attempt.data or {}).get("followup_record")
        Recording.objects.update_or_create(
            recording_id=str(data.get("recording_id")),
            defaults={
                "call": call,
                "path": str(data.get("path", "")),
                "duration": float(data.get("duration") or 0),
                "partial": bool(data.get("partial")),
                "followup_record_id": record_id,
            },
        )


_CAUSE_RESULTS = {
    "busy": "busy",
    "no_answer": "no_answer",
    "rejected": "rejected",
    "unreachable": "unreachable",
    "failed": "failed",
    "cancelled": "no_answer",
}


def _maybe_finish(attempt: ContactAttempt, at: dt.datetime) -> None:
    """End the attempt once everything needed is known: for an unanswered call its dial result;
    for an answered one the end of the call *and* the flow's variables (the engine publishes
    ``call.ended`` before ``flow.finished`` when the flow itself hangs up)."""
    data = attempt.data or {}
    if not data.get("ended"):
        return
    if attempt.state == AttemptState.DIALING:
        result = str(data.get("dial_result") or "")
        if result:
            dialler.finish(attempt, result=result if result != "answered" else "hung_up", now=at)
    elif attempt.state == AttemptState.ANSWERED and "outcome" in data:
        dialler.finish(attempt, result=_answered_result(attempt), now=at)


def _dial_result(data: dict[str, Any]) -> str:
    """The dial result a ``call.ended`` of an unanswered outbound leg implies (its cause)."""
    return _CAUSE_RESULTS.get(str(data.get("cause") or ""), "")


def _answered_result(attempt: ContactAttempt) -> str:
    data = attempt.data or {}
    said = str((data.get("variables") or {}).get("outreach_result") or "")
    if said:
        return said[:30]
    if data.get("outcome") == "caller_hangup" or data.get("cause") == "remote_hangup":
        return "hung_up"
    return "answered"


def _record(leg_id: str) -> None:
    from careloop.contactcenter.engine_client import EngineError, client

    try:
        client().record(leg_id, mode="both")
    except EngineError as exc:
        log.warning("automated call: recording did not start (%s)", exc.code)
