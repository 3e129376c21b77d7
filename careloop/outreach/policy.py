"""The one contact policy (issue 4 item 5): every outbound contact asks here first.

Nurses' calls, automated calls, campaign calls and (later) SMS all go through ``may_contact`` /
``begin_contact``, so quiet hours, caps per patient, do-not-contact, withdrawn consent, opt-outs
and death are enforced by the system, never left to the person or program making the contact.

Rules, in the order they are checked:

1. deceased → never;
2. do-not-contact (the patient's flag or a block) → never;
3. consent withdrawn → never;
4. opted out of the channel (calls or SMS flag, or an opt-out block such as key 9 in an automated
   call) → never on that channel;
5. quiet hours: outside the policy's contact hours, on a holiday → at the next opening;
6. caps: at most ``max_per_day`` contacts per local day and ``max_per_week`` in any 7 days →
   when a contact falls out of the count. Abnormal-result calls (purpose ``alert``) are not capped.

Only attempts that reached the telephone network (or the SMS gateway) count: states dialling,
answered and ended with ``started_at`` set. Inbound calls are not contacts we make.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from careloop.followup.choices import Channel
from careloop.outreach.choices import AttemptState, BlockKind, Purpose
from careloop.outreach.models import ContactAttempt, ContactBlock, ContactPolicy
from careloop.patients.models import Patient

CALL_CHANNELS = frozenset({Channel.PHONE.value, Channel.IVR.value})
#: States of an attempt that count as a contact made.
COUNTED_STATES = (AttemptState.DIALING, AttemptState.ANSWERED, AttemptState.ENDED)
#: Purposes not held to the caps (a doctor's advice after an abnormal answer must get through).
UNCAPPED_PURPOSES = frozenset({Purpose.ALERT.value})
_SEARCH_DAYS = 31


@dataclass(frozen=True)
class Decision:
    """``allowed``, else a ``reason`` code, a readable ``message`` and when to try again
    (``retry_at``; ``None`` means not until somebody changes the patient's record)."""

    allowed: bool
    reason: str = ""
    message: str = ""
    retry_at: dt.datetime | None = None

    @property
    def permanent(self) -> bool:
        return not self.allowed and self.retry_at is None


ALLOWED = Decision(True)


class ContactRefused(Exception):
    """Raised by ``begin_contact`` when the policy forbids the contact now."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


def current_policy() -> ContactPolicy:
    policy, _created = ContactPolicy.objects.get_or_create(pk=1)
    return policy


# --- contact hours --------------------------------------------------------------------------------


def _parse_time(value: str) -> dt.time:
    hours, minutes = str(value).split(":", 1)
    return dt.time(int(hours), int(minutes))


def _day_rules(policy: ContactPolicy, day: dt.date) -> list[tuple[dt.time, dt.time]]:
    """The contact windows of a local date: none on holidays, Monday's on make-up workdays."""
    iso = day.isoformat()
    if iso in set(policy.holidays or []):
        return []
    weekday = 1 if iso in set(policy.workdays or []) else day.isoweekday()
    spans = []
    for window in policy.windows or []:
        if weekday in window.get("days", []):
            spans.append((_parse_time(window["from"]), _parse_time(window["to"])))
    return sorted(spans)


def in_contact_hours(now: dt.datetime, policy: ContactPolicy | None = None) -> bool:
    policy = policy or current_policy()
    local = timezone.localtime(now)
    return any(start <= local.time() < end for start, end in _day_rules(policy, local.date()))


def next_contact_time(now: dt.datetime, policy: ContactPolicy | None = None) -> dt.datetime | None:
    """``now`` when inside contact hours, else the next opening (aware); None if none in a month."""
    policy = policy or current_policy()
    local = timezone.localtime(now)
    for offset in range(_SEARCH_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        for start, end in _day_rules(policy, day):
            opening = timezone.make_aware(dt.datetime.combine(day, start))
            closing = timezone.make_aware(dt.datetime.combine(day, end))
            if closing <= now:
                continue
            return max(opening, now)
    return None


# --- the decision ---------------------------------------------------------------------------------


def active_blocks(patient: Patient) -> list[ContactBlock]:
    return list(ContactBlock.objects.filter(patient=patient, lifted_at__isnull=True))


def _channel_label(channel: str) -> str:
    return str(Channel(channel).label) if channel in Channel.values else channel


def standing_refusal(patient: Patient, channel: str) -> Decision | None:
    """The permanent reasons (death, do-not-contact, consent, opt-out), or None."""
    if patient.is_deceased:
        return Decision(False, "deceased", _("The patient is deceased."))
    blocks = active_blocks(patient)
    if patient.do_not_contact or any(b.kind == BlockKind.DO_NOT_CONTACT for b in blocks):
        return Decision(False, "do_not_contact", _("The patient is marked do-not-contact."))
    if any(b.kind == BlockKind.CONSENT_WITHDRAWN for b in blocks):
        return Decision(
            False, "consent_withdrawn", _("The patient has withdrawn consent to be contacted.")
        )
    opted_out = (channel in CALL_CHANNELS and patient.call_opt_out) or (
        channel == Channel.SMS and patient.sms_opt_out
    )
    opted_out = opted_out or any(
        b.kind == BlockKind.OPT_OUT and b.channel in ("", channel) for b in blocks
    )
    if opted_out:
        return Decision(
            False,
            "opted_out",
            _("The patient opted out of %(channel)s.") % {"channel": _channel_label(channel)},
        )
    return None


def counted_contacts(patient: Patient) -> Any:
    """The contacts that count against the caps (made, not merely scheduled)."""
    return ContactAttempt.objects.filter(
        patient=patient, state__in=COUNTED_STATES, started_at__isnull=False
    )


def _format(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def may_contact(
    patient: Patient,
    channel: str,
    *,
    now: dt.datetime | None = None,
    purpose: str = Purpose.FOLLOWUP,
    policy: ContactPolicy | None = None,
    exclude: Iterable[int] = (),
) -> Decision:
    """Whether ``patient`` may be contacted on ``channel`` at ``now`` (see the module's rules).

    ``exclude``: attempt ids not to count (the attempt being decided on)."""
    now = now or timezone.now()
    policy = policy or current_policy()
    refusal = standing_refusal(patient, channel)
    if refusal is not None:
        return refusal
    opening = next_contact_time(now, policy)
    if opening is None:
        return Decision(False, "quiet_hours", _("No contact hours are set in the policy."))
    if opening > now:
        return Decision(
            False,
            "quiet_hours",
            _("Outside contact hours; the next opening is %(time)s.") % {"time": _format(opening)},
            opening,
        )
    if purpose in UNCAPPED_PURPOSES:
        return ALLOWED
    counted = counted_contacts(patient).exclude(pk__in=list(exclude))
    local = timezone.localtime(now)
    day_start = timezone.make_aware(dt.datetime.combine(local.date(), dt.time.min))
    today = counted.filter(started_at__gte=day_start).count()
    if today >= policy.max_per_day:
        retry = next_contact_time(day_start + dt.timedelta(days=1), policy)
        return Decision(
            False,
            "daily_cap",
            _("Already contacted %(n)s times today (at most %(max)s a day).")
            % {"n": today, "max": policy.max_per_day},
            retry,
        )
    week = list(
        counted.filter(started_at__gt=now - dt.timedelta(days=7))
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    if len(week) >= policy.max_per_week:
        # Free again when enough of the week's contacts are older than 7 days.
        freed = week[len(week) - policy.max_per_week] + dt.timedelta(days=7)
        return Decision(
            False,
            "weekly_cap",
            _("Already contacted %(n)s times in the last 7 days (at most %(max)s).")
            % {"n": len(week), "max": policy.max_per_week},
            next_contact_time(freed, policy),
        )
    return ALLOWED


def begin_contact(
    patient: Patient,
    channel: str,
    *,
    purpose: str,
    task: Any = None,
    user: Any = None,
    now: dt.datetime | None = None,
    attempt: ContactAttempt | None = None,
) -> ContactAttempt:
    """Check the policy and, when allowed, record the contact as started (state ``dialing``).

    The patient's row is locked while deciding, so two contacts started at once cannot both
    slip under a cap. Pass ``attempt`` to start a scheduled one; otherwise a new attempt is
    created. Raises ``ContactRefused``; a scheduled ``attempt`` is left untouched then.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        decision = may_contact(
            locked,
            channel,
            now=now,
            purpose=purpose,
            exclude=[attempt.pk] if attempt is not None and attempt.pk else [],
        )
        if not decision.allowed:
            raise ContactRefused(decision)
        if attempt is None:
            attempt = ContactAttempt(
                patient=locked,
                channel=channel,
                purpose=purpose,
                task=task,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                created_at=now,
            )
        attempt.state = AttemptState.DIALING
        attempt.started_at = now
        attempt.save()
    return attempt


def end_contact(
    attempt: ContactAttempt,
    *,
    result: str,
    reason: str = "",
    now: dt.datetime | None = None,
    answered_at: dt.datetime | None = None,
) -> ContactAttempt:
    """The contact is over: ``result`` is the dial result or what happened on the call."""
    now = now or timezone.now()
    attempt.state = AttemptState.ENDED
    attempt.result = result[:30]
    attempt.reason = reason[:200]
    attempt.ended_at = now
    if answered_at is not None:
        attempt.answered_at = answered_at
    attempt.save(update_fields=["state", "result", "reason", "ended_at", "answered_at"])
    return attempt


# --- blocks and cancellations -----------------------------------------------------------------------


def add_block(
    patient: Patient,
    kind: str,
    *,
    channel: str = "",
    source: str,
    reason: str = "",
    user: Any = None,
    now: dt.datetime | None = None,
) -> ContactBlock:
    """Record a standing refusal and cancel the contacts it forbids that are still scheduled.

    Do-not-contact and withdrawn consent also stop the patient's open follow-up tasks (every
    channel); an opt-out only stops scheduled contacts on that channel — the follow-up itself
    goes on by the channels still allowed.
    """
    from careloop.followup.services import stop_contact

    now = now or timezone.now()
    with transaction.atomic():
        block = ContactBlock.objects.create(
            patient=patient,
            kind=kind,
            channel=channel if kind == BlockKind.OPT_OUT else "",
            source=source,
            reason=reason[:200],
            created_by=user if getattr(user, "is_authenticated", False) else None,
            created_at=now,
        )
        scheduled = ContactAttempt.objects.filter(patient=patient, state=AttemptState.SCHEDULED)
        if block.channel:
            scheduled = scheduled.filter(channel=block.channel)
        scheduled.update(
            state=AttemptState.CANCELLED, reason=(reason or str(block.get_kind_display()))[:200]
        )
        if kind != BlockKind.OPT_OUT:
            stop_contact(patient, reason=str(block.get_kind_display()), acting_user=user, now=now)
    return block


def lift_block(block: ContactBlock, *, now: dt.datetime | None = None) -> None:
    block.lifted_at = now or timezone.now()
    block.save(update_fields=["lifted_at"])


def cancel_finished_tasks_attempts() -> int:
    """Scheduled contacts for a follow-up step that is already finished are cancelled: completing
    a step on any channel cancels every other pending contact for it. Set-based; returns how many."""
    from careloop.followup import states

    return (
        ContactAttempt.objects.filter(state=AttemptState.SCHEDULED, task__isnull=False)
        .filter(Q(task__status__in=sorted(states.FINAL)))
        .update(state=AttemptState.CANCELLED, reason=_("The follow-up step is finished."))
    )
