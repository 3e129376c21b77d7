"""Every state change of the contact center: agent phones, click-to-call, engine events, call backs."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from careloop.accounts.models import User
from careloop.contactcenter import events, hooks, queries
from careloop.contactcenter.choices import CallState, Direction, Leg, PhoneKind, RatingStatus
from careloop.contactcenter.engine_client import EngineError, client
from careloop.contactcenter.models import AgentPhone, Call, CallEvent, Recording, ScreenPopToken
from careloop.followup.models import Task
from careloop.patients.models import Patient, PatientContact

log = logging.getLogger(__name__)

Action = Callable[[], None]


class CallError(Exception):
    """A call could not be placed; the message is for the user."""


# --- agent phones ---------------------------------------------------------------------------------


def sip_domain() -> str:
    return getattr(settings, "CC_SIP_DOMAIN", "careloop.local")


def save_agent_phone(
    user: User, *, kind: str, uri: str = "", acting_user: User | None
) -> AgentPhone:
    """Create or change a user's phone. A registered account gets a user name and a strong password."""
    with transaction.atomic():
        phone = AgentPhone.objects.select_for_update().filter(user=user).first()
        if phone is None:
            phone = AgentPhone(user=user, sip_username=f"agent{user.pk}")
        phone.kind = kind
        if kind == PhoneKind.REGISTERED:
            if not phone.sip_password:
                phone.sip_password = secrets.token_urlsafe(24)
            phone.uri = f"sip:{phone.sip_username}@{sip_domain()}"
        else:
            if not uri.startswith(("sip:", "sips:")):
                raise ValueError(_("A fixed phone needs a SIP URI."))
            phone.uri = uri
        phone.save()
    return phone


def reset_agent_password(phone: AgentPhone, *, acting_user: User | None) -> AgentPhone:
    with transaction.atomic():
        phone.sip_password = secrets.token_urlsafe(24)
        phone.save(update_fields=["sip_password"])
    return phone


def update_presence(registrations: dict[str, tuple[str, dt.datetime]]) -> int:
    """Store who is registered at Kamailio: user name → (contact, expiry). Returns the count seen."""
    now = timezone.now()
    with transaction.atomic():
        for phone in AgentPhone.objects.select_for_update().filter(kind=PhoneKind.REGISTERED):
            seen = registrations.get(phone.sip_username)
            if seen is not None:
                phone.registered_contact, phone.registration_expires_at = seen
                phone.last_registration_at = now
            else:
                phone.registration_expires_at = None
            phone.save(
                update_fields=[
                    "registered_contact",
                    "registration_expires_at",
                    "last_registration_at",
                ]
            )
    return len(registrations)


# --- click-to-call (F2.4) -------------------------------------------------------------------------


def dial_target(number: str) -> str:
    """What the engine dials for a patient's number (a trunk URI pattern, or the bare number)."""
    return getattr(settings, "CC_PATIENT_DIAL", "{number}").format(number=number)


def ring_timeout() -> int:
    return int(getattr(settings, "CC_RING_TIMEOUT", 30))


def click_to_call(
    patient: Patient,
    *,
    acting_user: User,
    task: Task | None = None,
    contact: PatientContact | None = None,
) -> Call:
    """Ring the nurse's phone; when she answers the patient is dialled and both are bridged, recorded."""
    if not patient.contactable or patient.call_opt_out:
        raise CallError(_("This patient must not be called."))
    number = contact.phone if contact is not None else patient.phone
    if not number:
        raise CallError(_("No phone number to call."))
    phone = AgentPhone.objects.filter(user=acting_user).first()
    if phone is None:
        raise CallError(_("You have no phone set up for calls."))
    attempt = _begin_contact(patient, task=task, acting_user=acting_user)
    with transaction.atomic():
        call = Call.objects.create(
            direction=Direction.OUTBOUND,
            state=CallState.DIALING_AGENT,
            agent=acting_user,
            patient=patient,
            task=task,
            contact=contact,
        )
        type(attempt).objects.filter(pk=attempt.pk).update(call=call)
        events.push_call(call)
    try:
        leg = client().originate(
            phone.uri, ring_timeout=ring_timeout(), app_data={"cc_call": call.pk, "leg": Leg.AGENT}
        )
    except EngineError as exc:
        _end(call, cause=f"engine_{exc.code}")
        raise CallError(
            _("The telephone system refused the call (%(code)s).") % {"code": exc.code}
        ) from exc
    Call.objects.filter(pk=call.pk, agent_leg_id="").update(agent_leg_id=leg["call_id"])
    call.refresh_from_db()
    return call


def _begin_contact(patient: Patient, *, task: Task | None, acting_user: User) -> Any:
    """The hospital's contact policy (quiet hours, caps, do-not-contact...) decides first; the
    call is recorded as a contact attempt (``careloop.outreach``). Refusal → ``CallError``."""
    from careloop.outreach.choices import Purpose
    from careloop.outreach.policy import ContactRefused, begin_contact

    try:
        return begin_contact(
            patient,
            "phone",
            purpose=Purpose.FOLLOWUP if task is not None else Purpose.CALL,
            task=task,
            user=acting_user,
        )
    except ContactRefused as exc:
        raise CallError(exc.decision.message) from exc


def _contact_over(call: Call, *, ended_by: str = "") -> None:
    """The call's contact attempt is over (inside the transaction that ends the call): answered,
    the patient's dial result, or never dialled (the nurse did not answer, the engine refused:
    cancelled, so the policy's caps do not count it)."""
    from careloop.outreach.choices import AttemptState
    from careloop.outreach.models import ContactAttempt
    from careloop.outreach.policy import end_contact

    open_states = [AttemptState.SCHEDULED, AttemptState.DIALING, AttemptState.ANSWERED]
    for attempt in ContactAttempt.objects.filter(call=call, state__in=open_states):
        if call.answered_at is not None:
            result = "answered"
        elif not call.patient_leg_id:
            result = "not_dialled"  # the patient's phone never rang
        elif ended_by == Leg.PATIENT:
            result = call.cause or "failed"
        else:
            result = "cancelled"
        end_contact(
            attempt,
            result=result,
            reason=call.cause,
            now=call.ended_at,
            answered_at=call.answered_at,
        )
        if result == "not_dialled":  # never reached the patient: not a contact the caps count
            ContactAttempt.objects.filter(pk=attempt.pk).update(state=AttemptState.CANCELLED)


def hang_up(call: Call, *, acting_user: User) -> None:
    """Hang up every leg of the call that is still up; the engine's events end the call.
    A plain hang-up never puts the patient through to the rating; a rating already under way
    (the nurse has left) is left to finish."""
    Call.objects.filter(
        pk=call.pk, rating_status__in=[RatingStatus.NONE, RatingStatus.REQUESTED]
    ).exclude(state=CallState.ENDED).update(rating_status=RatingStatus.SKIPPED)
    call.refresh_from_db(fields=["rating_status"])
    engine = client()
    legs = [leg for leg in (call.agent_leg_id, call.patient_leg_id) if leg]
    if call.rating_status == RatingStatus.OFFERED:
        legs = [leg for leg in legs if leg != call.patient_leg_id]
    unknown = 0
    for leg_id in legs:
        try:
            engine.hangup(leg_id)
        except EngineError as exc:
            if exc.code not in ("not_found", "call_ended", "wrong_state"):
                raise
            unknown += exc.code == "not_found"
    if not legs:
        _end(call, cause="cancelled")
    elif unknown == len(legs):
        _end(call, cause="lost")  # no event will come for legs the engine does not know


def hang_up_for_rating(call: Call, *, acting_user: User) -> bool:
    """End the nurse's side of a call in conversation and put the patient through to the
    satisfaction rating (F3.3), whatever ``CC_RATING_AFTER_CALL`` says. A call not in
    conversation is simply hung up. Returns whether the rating was asked for."""
    asked = (
        Call.objects.filter(
            pk=call.pk,
            state=CallState.TALKING,
            rating_status__in=[RatingStatus.NONE, RatingStatus.REQUESTED],
        )
        .exclude(bridge_id="")
        .exclude(agent_leg_id="")
        .update(rating_status=RatingStatus.REQUESTED)
    )
    if not asked:
        hang_up(call, acting_user=acting_user)
        return False
    try:
        client().hangup(call.agent_leg_id)
    except EngineError as exc:
        if exc.code not in ("not_found", "call_ended", "wrong_state"):
            raise
    return True


def _end(call: Call, *, cause: str, sip_code: int | None = None, dial_result: str = "") -> None:
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        if locked.state == CallState.ENDED:
            return
        locked.state = CallState.ENDED
        locked.ended_at = timezone.now()
        locked.cause = cause[:30]
        locked.sip_code = sip_code
        locked.dial_result = dial_result or locked.dial_result
        locked.save()
        _contact_over(locked)
        events.push_call(locked)


# --- engine events --------------------------------------------------------------------------------

_LOGGED_FIELDS = (
    "direction",
    "cause",
    "sip_code",
    "hangup_by",
    "codec",
    "recording_id",
    "duration",
    "mode",
    "partial",
    "bridge_id",
    "reason",
    "action",
    "dial_result",
    "flow_id",
    "outcome",
    "node",
)


_CDR_FIELDS = (
    "leg_id",
    "direction",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "cause",
    "sip_code",
    "hangup_by",
    "dial_result",
    "codec",
    "bridge_id",
    "interrupted",
)


def _cdr_without_numbers(record: dict[str, Any]) -> dict[str, Any]:
    """The CDR of a leg (F4.10) as kept with the call: times, outcome, recordings; no numbers."""
    kept = {k: record[k] for k in _CDR_FIELDS if k in record}
    kept["recordings"] = [
        {k: r.get(k) for k in ("recording_id", "duration", "partial", "mode")}
        for r in record.get("recordings") or []
        if isinstance(r, dict)
    ]
    return kept


def _event_time(event: dict[str, Any]) -> dt.datetime:
    return parse_datetime(str(event.get("ts", ""))) or timezone.now()


def _find_call(event: dict[str, Any]) -> tuple[Call | None, str]:
    leg_id = event.get("call_id") or ""
    data = event.get("data") or {}
    if event["type"] == "call.created":
        app = data.get("app_data") or {}
        if "cc_call" in app:
            call = Call.objects.select_for_update().filter(pk=app["cc_call"]).first()
            if call is not None:
                field = "agent_leg_id" if app.get("leg") == Leg.AGENT else "patient_leg_id"
                if not getattr(call, field):
                    setattr(call, field, leg_id)
                    call.save(update_fields=[field])
                return call, str(app.get("leg"))
    if event["type"] == "recording.finished" and data.get("bridge_id"):
        call = Call.objects.select_for_update().filter(bridge_id=data["bridge_id"]).first()
        if call is not None:
            return call, ""
    if leg_id:
        call = Call.objects.select_for_update().filter(agent_leg_id=leg_id).first()
        if call is not None:
            return call, Leg.AGENT
        call = Call.objects.select_for_update().filter(patient_leg_id=leg_id).first()
        if call is not None:
            return call, Leg.PATIENT
    return None, ""


def handle_events(batch: list[dict[str, Any]]) -> None:
    """Apply a webhook batch in order. Engine commands an event calls for run after its commit."""
    for event in batch:
        if hooks.offer(event):  # an automated or campaign call (careloop/contactcenter/hooks.py)
            continue
        actions: list[Action] = []
        with transaction.atomic():
            _handle_event(event, actions)
        for action in actions:
            action()


def _handle_event(event: dict[str, Any], actions: list[Action]) -> None:
    kind = event.get("type", "")
    data = event.get("data") or {}
    call, leg = _find_call(event)
    if call is None:
        if (
            kind == "call.created"
            and data.get("direction") == "inbound"
            and not data.get("app_data")
        ):
            _route_inbound(event, actions)
        return
    seq, at = int(event.get("seq") or 0), _event_time(event)
    if CallEvent.objects.filter(call=call, seq=seq, type=kind[:40], at=at).exists():
        return  # a webhook batch sent again after a failure: already applied
    logged = {k: data[k] for k in _LOGGED_FIELDS if k in data}
    if kind == "cdr":
        logged = _cdr_without_numbers(data.get("record") or {})
        if leg == Leg.PATIENT and logged.get("dial_result"):
            call.dial_result = str(logged["dial_result"])[:20]
            call.save(update_fields=["dial_result"])
    CallEvent.objects.create(call=call, seq=seq, type=kind[:40], leg=leg, data=logged, at=at)
    if kind == "recording.finished":
        _on_recording(call, data)
    elif kind == "flow.finished" and leg == Leg.PATIENT:
        _on_flow_finished(call, data, event)
    elif call.state == CallState.ENDED:
        return
    elif kind == "call.answered":
        _on_answered(call, leg, event, actions)
    elif kind == "call.ended":
        _on_ended(call, leg, data, event, actions)
    events.push_call(call)


def _on_answered(call: Call, leg: str, event: dict[str, Any], actions: list[Action]) -> None:
    at = _event_time(event)
    if leg == Leg.AGENT:
        call.agent_answered_at = at
        if call.direction == Direction.OUTBOUND:
            call.state = CallState.RINGING_PATIENT
            call.save(update_fields=["agent_answered_at", "state"])
            actions.append(lambda: _dial_patient(call.pk))
        else:
            call.save(update_fields=["agent_answered_at"])
            actions.append(lambda: _answer_and_bridge(call.pk))
    elif leg == Leg.PATIENT and call.direction == Direction.OUTBOUND:
        call.answered_at = at
        call.state = CallState.TALKING
        call.save(update_fields=["answered_at", "state"])
        actions.append(lambda: _bridge(call.pk))
    elif leg == Leg.PATIENT:
        call.answered_at = at
        call.state = CallState.TALKING
        call.save(update_fields=["answered_at", "state"])


def _dial_patient(call_id: int) -> None:
    call = Call.objects.select_related("patient", "contact").get(pk=call_id)
    assert call.patient is not None  # outbound calls always have one
    number = call.contact.phone if call.contact is not None else call.patient.phone
    try:
        leg = client().originate(
            dial_target(number),
            ring_timeout=ring_timeout(),
            app_data={"cc_call": call.pk, "leg": Leg.PATIENT},
        )
    except EngineError as exc:
        log.warning("call %s: dialling the patient failed: %s", call.pk, exc.code)
        _end(call, cause=f"engine_{exc.code}")
        _hangup_quietly(call.agent_leg_id)
        return
    Call.objects.filter(pk=call.pk, patient_leg_id="").update(patient_leg_id=leg["call_id"])


def _bridge(call_id: int) -> None:
    call = Call.objects.get(pk=call_id)
    try:
        # The engine leaves the patient up when the nurse hangs up: she may go on to the rating.
        bridge = client().bridge(
            [call.agent_leg_id, call.patient_leg_id], record=True, hangup_on_exit=False
        )
    except EngineError as exc:
        log.warning("call %s: bridging failed: %s", call.pk, exc.code)
        _end(call, cause=f"engine_{exc.code}")
        _hangup_quietly(call.agent_leg_id)
        _hangup_quietly(call.patient_leg_id)
        return
    Call.objects.filter(pk=call.pk).update(bridge_id=bridge["bridge_id"])


def _answer_and_bridge(call_id: int) -> None:
    call = Call.objects.get(pk=call_id)
    try:
        client().answer(call.patient_leg_id)
    except EngineError as exc:
        log.warning("call %s: answering the caller failed: %s", call.pk, exc.code)
        _end(call, cause=f"engine_{exc.code}")
        _hangup_quietly(call.agent_leg_id)
        return
    _bridge(call_id)


def _hangup_quietly(leg_id: str) -> None:
    if leg_id:
        try:
            client().hangup(leg_id)
        except EngineError:
            pass


def rating_after_call() -> bool:
    """Whether a patient is put through to the rating when the nurse simply hangs up (F3.3)."""
    return bool(getattr(settings, "CC_RATING_AFTER_CALL", True))


def _rating_wanted(call: Call) -> bool:
    if call.rating_status == RatingStatus.REQUESTED:
        return True
    return call.rating_status == RatingStatus.NONE and rating_after_call()


def _on_ended(
    call: Call, leg: str, data: dict[str, Any], event: dict[str, Any], actions: list[Action]
) -> None:
    call.state = CallState.ENDED
    call.ended_at = _event_time(event)
    call.cause = str(data.get("cause") or "")[:30]
    call.sip_code = data.get("sip_code")
    fields = ["state", "ended_at", "cause", "sip_code"]
    _contact_over(call, ended_by=leg)
    if (
        leg == Leg.AGENT
        and call.bridge_id
        and call.answered_at is not None
        and call.patient_leg_id
        and _rating_wanted(call)
    ):
        # The nurse left a conversation: the patient stays on the line for the rating.
        call.rating_status = RatingStatus.OFFERED
        call.save(update_fields=[*fields, "rating_status"])
        call_pk = call.pk
        actions.append(lambda: _offer_rating(call_pk))
        return
    if call.rating_status == RatingStatus.REQUESTED:
        call.rating_status = RatingStatus.NONE  # the patient left before the nurse's side ended
        fields.append("rating_status")
    call.save(update_fields=fields)
    # The bridge does not hang up the others (hangup_on_exit false): the application does.
    other = call.patient_leg_id if leg == Leg.AGENT else call.agent_leg_id
    if other:
        actions.append(lambda: _hangup_quietly(other))


# --- post-call satisfaction rating (F3.3) ---------------------------------------------------------

RATING_FLOW_ID = "cc-rating"
RATING_PROMPT = (
    "感谢您接听医院的随访电话。请对本次服务进行评价：非常满意请按5，满意请按4，一般请按3，"
    "不满意请按2，非常不满意请按1。"
)
RATING_VALUES = ("1", "2", "3", "4", "5")


def rating_flow() -> dict[str, Any]:
    """The engine flow the patient hears after the nurse leaves (docs/engine.md#ivr-flows):
    one key 1-5, one retry on silence or a wrong key, thanks, hang up."""
    return {
        "format": "careloop-flow/1",
        "id": RATING_FLOW_ID,
        "version": 1,
        "name": "通话满意度评价",
        "voice": "cmn",
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "menu",
                "say": RATING_PROMPT,
                "options": {digit: "thanks" for digit in RATING_VALUES},
                "var": "rating",
                "timeout": 6,
                "max_attempts": 2,
                "no_input": "没有听到您的按键。",
                "invalid": "您的输入有误。",
                "on_failure": "goodbye",
            },
            "thanks": {"type": "hangup", "say": "感谢您的评价，祝您早日康复，再见。"},
            "goodbye": {"type": "hangup", "say": "感谢您的接听，祝您早日康复，再见。"},
        },
    }


def _offer_rating(call_id: int) -> None:
    call = Call.objects.get(pk=call_id)
    try:
        client().run_flow(call.patient_leg_id, rating_flow(), variables={"cc_call": call.pk})
    except EngineError as exc:
        log.warning("call %s: the rating could not start: %s", call.pk, exc.code)
        Call.objects.filter(pk=call.pk, rating_status=RatingStatus.OFFERED).update(
            rating_status=RatingStatus.UNRATED
        )
        _hangup_quietly(call.patient_leg_id)


def _on_flow_finished(call: Call, data: dict[str, Any], event: dict[str, Any]) -> None:
    if data.get("flow_id") != RATING_FLOW_ID or call.rating_status != RatingStatus.OFFERED:
        return
    value = str((data.get("variables") or {}).get("rating") or "")
    if value in RATING_VALUES:
        call.rating = int(value)
        call.rated_at = _event_time(event)
        call.rating_status = RatingStatus.RATED
    else:
        call.rating_status = RatingStatus.UNRATED
    call.save(update_fields=["rating", "rated_at", "rating_status"])


def _on_recording(call: Call, data: dict[str, Any]) -> None:
    from careloop.followup.models import FollowUpRecord

    record = None
    if call.task_id:
        record = (
            FollowUpRecord.objects.filter(task_id=call.task_id, recorded_at__gte=call.created_at)
            .order_by("-recorded_at")
            .first()
        )
    Recording.objects.update_or_create(
        recording_id=str(data["recording_id"]),
        defaults={
            "call": call,
            "path": str(data.get("path", "")),
            "duration": float(data.get("duration") or 0),
            "partial": bool(data.get("partial")),
            "followup_record": record,
        },
    )


# --- calls back (F4.8 smart match, F4.5 screen pop) -----------------------------------------------

_USER_PART = re.compile(r"^(?:sips?:)?([^@;>]+)")


def caller_number(caller: str) -> str:
    """The phone number in a caller URI (``sip:13800138000@host`` → ``13800138000``), or ''."""
    from careloop.core.formats import normalize_phone

    raw = caller.strip().strip("<>")
    if "<" in raw:
        raw = raw.split("<", 1)[1]
    match = _USER_PART.match(raw)
    if not match:
        return ""
    try:
        return normalize_phone(match.group(1))
    except ValueError:
        return ""


def make_screen_pop_token(phone: str, *, user: User) -> str:
    token = secrets.token_urlsafe(24)
    ScreenPopToken.objects.create(token=token, phone=phone, user=user)
    return token


def resolve_screen_pop_token(token: str, *, user: User) -> str | None:
    """The number a screen-pop token stands for, once, for the user it was made for (1 hour)."""
    with transaction.atomic():
        row = (
            ScreenPopToken.objects.select_for_update()
            .filter(
                token=token,
                user=user,
                used_at__isnull=True,
                created_at__gte=timezone.now() - dt.timedelta(hours=1),
            )
            .first()
        )
        if row is None:
            return None
        row.used_at = timezone.now()
        row.save(update_fields=["used_at"])
        return row.phone


def is_callback_number(callee: str) -> bool:
    """Whether an inbound call is for the follow-up number (``CC_CALLBACK_NUMBERS``; unset: all).
    Set it when the same engine also answers other numbers with an IVR flow."""
    numbers = getattr(settings, "CC_CALLBACK_NUMBERS", None)
    if not numbers:
        return True
    match = _USER_PART.match(callee.strip().strip("<>").split("<")[-1])
    return bool(match) and match.group(1) in numbers


def _route_inbound(event: dict[str, Any], actions: list[Action]) -> None:
    data = event.get("data") or {}
    if not is_callback_number(str(data.get("callee", ""))):
        return
    leg_id = str(event["call_id"])
    number = caller_number(str(data.get("caller", "")))
    match = queries.callback_match(number)
    if match.phone is None:
        actions.append(lambda: _reject_quietly(leg_id))
        return
    call = Call.objects.create(
        direction=Direction.INBOUND,
        state=CallState.DIALING_AGENT,
        agent=match.phone.user,
        patient=match.patient,
        task=match.task,
        patient_leg_id=leg_id,
    )
    CallEvent.objects.create(
        call=call,
        seq=int(event.get("seq") or 0),
        type="call.created",
        leg=Leg.PATIENT,
        data={"direction": "inbound"},
        at=_event_time(event),
    )
    if match.patient is not None:
        url = f"/patients/{match.patient.pk}/"
    else:
        token = make_screen_pop_token(number, user=match.phone.user) if number else ""
        url = f"/patients/new/?caller={token}" if token else "/patients/new/"
    events.push_screen_pop(match.phone.user_id, url, call.pk)
    events.push_call(call)
    agent_uri = match.phone.uri
    call_pk = call.pk

    def ring_agent() -> None:
        engine = client()
        try:
            try:
                engine.ring(leg_id)
            except EngineError as exc:
                if exc.code != "wrong_state":  # already ringing
                    raise
            leg = engine.originate(
                agent_uri,
                ring_timeout=ring_timeout(),
                app_data={"cc_call": call_pk, "leg": Leg.AGENT},
            )
        except EngineError as exc:
            log.warning("call back %s: ringing the agent failed: %s", call_pk, exc.code)
            _end(Call.objects.get(pk=call_pk), cause=f"engine_{exc.code}")
            _reject_quietly(leg_id)
            return
        Call.objects.filter(pk=call_pk, agent_leg_id="").update(agent_leg_id=leg["call_id"])

    actions.append(ring_agent)


def _reject_quietly(leg_id: str) -> None:
    try:
        client().reject(leg_id, code=480)
    except EngineError:
        pass


def reconcile_calls(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> int:
    """End calls the engine no longer knows (events lost: engine restart, webhook given up).
    Returns how many were ended. Idempotent; an unreachable engine changes nothing.
    A rating still "in progress" 10 minutes after the call (the flow lasts about a minute)
    lost its events: it is closed as not rated."""
    Call.objects.filter(
        rating_status=RatingStatus.OFFERED,
        ended_at__lt=timezone.now() - dt.timedelta(minutes=10),
    ).update(rating_status=RatingStatus.UNRATED)
    engine = client()
    ended = 0
    stale = Call.objects.exclude(state=CallState.ENDED).filter(
        created_at__lt=timezone.now() - older_than
    )
    for call in stale:
        legs = [leg for leg in (call.agent_leg_id, call.patient_leg_id) if leg]
        alive = False
        for leg_id in legs:
            try:
                alive = alive or engine.get_call(leg_id).get("state") != "ended"
            except EngineError as exc:
                if exc.code != "not_found":
                    return ended
        if not alive:
            _end(call, cause="lost")
            ended += 1
    return ended


# --- recordings and follow-up records -------------------------------------------------------------


def link_recordings(record: Any) -> int:
    """Attach to a newly recorded follow-up outcome the recordings of its task's calls made since
    the task's previous outcome and not yet attached (the nurse records the outcome after hanging
    up). Returns how many were attached."""
    from careloop.followup.models import FollowUpRecord

    previous = (
        FollowUpRecord.objects.filter(task_id=record.task_id, recorded_at__lt=record.recorded_at)
        .exclude(pk=record.pk)
        .order_by("-recorded_at")
        .values_list("recorded_at", flat=True)
        .first()
    )
    recordings = Recording.objects.filter(
        call__task_id=record.task_id,
        followup_record__isnull=True,
        call__created_at__lte=record.recorded_at,
    )
    if previous is not None:
        recordings = recordings.filter(call__created_at__gte=previous)
    return recordings.update(followup_record=record)
