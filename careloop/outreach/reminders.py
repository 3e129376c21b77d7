"""Reminders played to patients by automated call (F2.6, issue 4 item 4): state changes.

Four kinds (``ReminderKind``), each a ``Reminder`` whose ``text`` is what the call says:

* **medication** (用药提醒) — "请按时服用阿司匹林肠溶片，每次一百毫克，每日一次。": the dose and
  frequency as written in the discharge medication, spoken (``100mg`` → 一百毫克, ``bid`` → 每日两次);
* **re-examination** (复查提醒) — "您的复查时间是十一月二十五日，星期三，上午九点半，地点是门诊楼
  三楼心内科诊室，请携带出院小结和检查报告。", by default the day before at 10:00;
* **refill** (取药提醒) — from the dispensed quantity and the daily amount: the supply runs out on
  the dispensing day (the discharge date) + ⌊quantity ÷ daily amount⌋ days; the reminder is due
  ``days_before`` days earlier (3 by default). Missing or zero quantity / daily amount, or no
  discharge date, means no reminder, with the reason (``RefillError``);
* **physical exam / vaccination** (体检、预防接种提醒) — what, when and where.

Dates and times are spoken with ``speech`` (eSpeak reads "11-25 09:30" digit by digit). Whether the
appointment is today, tomorrow or the day after is decided by the engine *when the call is made*
(``time`` nodes on one-day calendars), so a call retried the next morning never says "明天" about
today's appointment.

Calls: ``schedule_due_reminders`` (every minute, ``reminder_jobs``) puts the first call of every due
reminder with the dialler (``dialler.schedule(purpose="reminder")``), which dials within the
contact policy. The flow (``reminder_flow``) names the hospital, plays the text, asks
"重听请按1，收到请按2" (the text is repeated once), thanks and hangs up. ``on_result`` (the dialler's
result handler) marks the reminder delivered when the patient pressed 2 or listened to the end,
else schedules another call after the policy's ``automated_retry_minutes`` until
``automated_attempts`` calls were made, then marks it failed with a readable reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.engine.flow import validate_flow
from careloop.followup.choices import Channel
from careloop.outreach import dialler, policy
from careloop.outreach.choices import AttemptState, Purpose, ReminderKind, ReminderStatus
from careloop.outreach.models import ContactAttempt, Reminder
from careloop.outreach.speech import say_date, say_digits, say_integer, say_number, say_time
from careloop.patients.models import Encounter, Medication, Patient

log = logging.getLogger(__name__)

#: Refill reminders are due this many days before the supply runs out.
REFILL_DAYS_BEFORE = 3
#: Discharges looked at by the daily refill job (a longer supply is reminded of when it is due).
REFILL_LOOKBACK_DAYS = 60
#: Medication reminders made at once: every day for at most this many days.
MAX_MEDICATION_DAYS = 30
#: Local time of day a reminder is due when only its day is known.
REMIND_AT = dt.time(10, 0)
#: Attempts still to end (nothing else may be scheduled for the reminder meanwhile).
PENDING_STATES = (AttemptState.SCHEDULED, AttemptState.DIALING, AttemptState.ANSWERED)
#: Flow results meaning the patient heard the reminder.
DELIVERED_RESULTS = frozenset({"confirmed", "listened"})
#: Dial results not worth calling again: the number does not exist.
WRONG_NUMBER_RESULTS = frozenset({"unreachable"})
REEXAM_NOTE = "请携带出院小结和检查报告"
KIND_TITLES = {
    ReminderKind.MEDICATION: "用药提醒",
    ReminderKind.REEXAM: "复查提醒",
    ReminderKind.REFILL: "取药提醒",
    ReminderKind.EXAM: "预约提醒",
}
RELATIVE_DAYS = {0: "今天", 1: "明天", 2: "后天"}


class ReminderError(ValueError):
    """A reminder cannot be made (the message says why, for the nurse)."""


class RefillError(ReminderError):
    """No refill date can be computed for a medication (missing or zero data)."""


# --- speaking ---------------------------------------------------------------------------------

_UNIT_WORDS = [
    ("mg", "毫克"),
    ("μg", "微克"),
    ("ug", "微克"),
    ("mcg", "微克"),
    ("ml", "毫升"),
    ("iu", "国际单位"),
    ("u", "单位"),
    ("g", "克"),
    ("l", "升"),
]
_FREQUENCIES = {
    "qd": "每日一次",
    "bid": "每日两次",
    "tid": "每日三次",
    "qid": "每日四次",
    "qn": "每晚一次",
    "qm": "每天早上一次",
    "qod": "隔日一次",
    "qw": "每周一次",
    "biw": "每周两次",
    "tiw": "每周三次",
    "prn": "需要时服用",
    "st": "立即服用",
    "hs": "睡前服用",
}
_EVERY_HOURS = re.compile(r"^q(\d+)h$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-zμ]+)?$")


def _clean(text: str) -> str:
    """User text inside a spoken prompt: no template braces, no line breaks."""
    return " ".join(str(text or "").replace("{", "").replace("}", "").split())


def speak_numbers(text: str) -> str:
    """Every number in ``text`` in words: "每次2片" → "每次两片"."""

    def spoken(match: re.Match[str]) -> str:
        value = say_number(match.group(0))
        return "两" if value == "二" else value

    return _NUMBER.sub(spoken, text)


def speak_dose(dose: str) -> str:
    """``100mg`` → 每次一百毫克; ``0.5g`` → 每次零点五克; free text keeps its words."""
    dose = _clean(dose)
    if not dose:
        return ""
    match = _AMOUNT.match(dose)
    if match:
        number, unit = match.groups()
        words = dict(_UNIT_WORDS).get((unit or "").lower(), unit or "")
        amount = say_number(number)
        if amount == "二":
            amount = "两"
        return f"每次{amount}{words}"
    return speak_numbers(dose)


def speak_frequency(frequency: str) -> str:
    """``bid`` → 每日两次, ``q8h`` → 每八小时一次; Chinese text as written (numbers spoken)."""
    frequency = _clean(frequency)
    key = frequency.lower().replace(".", "").replace(" ", "")
    if key in _FREQUENCIES:
        return _FREQUENCIES[key]
    hours = _EVERY_HOURS.match(key)
    if hours:
        return f"每{say_integer(int(hours.group(1)))}小时一次"
    return speak_numbers(frequency)


def _amount(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    spoken = say_number(text)
    return "两" if spoken == "二" else spoken


def _local(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment)


def speak_when(moment: dt.datetime, *, with_year: bool = False) -> str:
    """十一月二十五日，星期三，上午九点半 (二零二七年一月五日… with ``with_year``)."""
    local = _local(moment)
    day = say_date(local.date())
    if with_year:
        day = f"{say_digits(str(local.year))}年{day}"
    return f"{day}，{say_time(local.time())}"


# --- texts ------------------------------------------------------------------------------------


def medication_text(medication: Medication) -> str:
    """请按时服用{药名}，{剂量}，{频次}。"""
    parts = [_clean(medication.drug)]
    for spoken in (speak_dose(medication.dose), speak_frequency(medication.frequency)):
        if spoken:
            parts.append(spoken)
    return "请按时服用" + "，".join(parts) + "。"


def appointment_text(
    kind: str,
    event_at: dt.datetime,
    place: str,
    *,
    item: str = "",
    note: str = "",
    now: dt.datetime | None = None,
) -> str:
    """The re-examination / exam text, with the time as spoken on a day the event is not close
    (the call puts 今天/明天/后天 in front when it is)."""
    this_year = _local(now or timezone.now()).year
    when = speak_when(event_at, with_year=_local(event_at).year != this_year)
    place = _clean(place)
    note = _clean(note)
    if kind == ReminderKind.REEXAM:
        text = f"您的复查时间是{when}，地点是{place}"
    else:
        what = _clean(item) or "体检"
        text = f"您预约的{what}时间是{when}，地点是{place}"
    note = note.rstrip("。.！!，, ")
    return f"{text}，{note}。" if note else f"{text}。"


def refill_text(medication: Medication, run_out: dt.date) -> str:
    unit = _clean(medication.unit)
    daily = _amount(medication.daily_amount)
    quantity = _amount(medication.quantity)
    return (
        f"您出院时带的{_clean(medication.drug)}共{quantity}{unit}，按每日{daily}{unit}服用，"
        f"预计{say_date(run_out)}用完。请在用完之前到医院门诊开药，不要自行停药。"
    )


# --- creating ---------------------------------------------------------------------------------


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _check_channel(patient: Patient, channel: str) -> None:
    if channel != Channel.IVR:
        raise ReminderError(_("Reminders are sent by automated call only for now."))
    if not patient.phone:
        raise ReminderError(_("The patient has no phone number."))


def create_medication_reminder(
    medication: Medication,
    *,
    due_at: dt.datetime,
    user: Any = None,
    now: dt.datetime | None = None,
) -> Reminder:
    """A reminder to take a discharge medication as prescribed, called at ``due_at``."""
    return create_medication_reminders(medication, due_at=due_at, days=1, user=user, now=now)[0]


def create_medication_reminders(
    medication: Medication,
    *,
    due_at: dt.datetime,
    days: int = 1,
    user: Any = None,
    now: dt.datetime | None = None,
) -> list[Reminder]:
    """Medication reminders at the same local time on ``days`` days in a row, from ``due_at``
    (用药提醒 "按一定的频率": e.g. every morning for the first week at home)."""
    now = now or timezone.now()
    if not 1 <= days <= MAX_MEDICATION_DAYS:
        raise ReminderError(_("Remind on 1 to %(max)s days.") % {"max": MAX_MEDICATION_DAYS})
    if due_at < now - dt.timedelta(minutes=5):
        raise ReminderError(_("The time to call has already passed."))
    encounter = medication.encounter
    patient = encounter.patient
    _check_channel(patient, Channel.IVR)
    first = _local(due_at)
    text = medication_text(medication)
    created = []
    with transaction.atomic():
        for offset in range(days):
            day = first.date() + dt.timedelta(days=offset)
            created.append(
                Reminder.objects.create(
                    kind=ReminderKind.MEDICATION,
                    patient=patient,
                    encounter=encounter,
                    medication=medication,
                    channel=Channel.IVR,
                    due_at=timezone.make_aware(dt.datetime.combine(day, first.time())),
                    text=text,
                    created_by=_user(user),
                    created_at=now,
                )
            )
    return created


def default_due(event_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The day before the appointment at 10:00 (local), or now when that has passed."""
    day_before = _local(event_at).date() - dt.timedelta(days=1)
    due = timezone.make_aware(dt.datetime.combine(day_before, REMIND_AT))
    return max(due, now)


def create_appointment_reminder(
    patient: Patient,
    *,
    kind: str,
    event_at: dt.datetime,
    place: str,
    item: str = "",
    note: str | None = None,
    due_at: dt.datetime | None = None,
    encounter: Encounter | None = None,
    user: Any = None,
    now: dt.datetime | None = None,
) -> Reminder:
    """A re-examination (``reexam``) or physical exam / vaccination (``exam``) reminder."""
    now = now or timezone.now()
    if kind not in (ReminderKind.REEXAM, ReminderKind.EXAM):
        raise ReminderError(_("Only re-examination and exam reminders have a time and place."))
    if not _clean(place):
        raise ReminderError(_("Say where the patient should go."))
    if event_at <= now:
        raise ReminderError(_("The appointment time has already passed."))
    due = due_at or default_due(event_at, now)
    if due >= event_at:
        raise ReminderError(_("The reminder must be called before the appointment."))
    _check_channel(patient, Channel.IVR)
    if note is None:
        note = REEXAM_NOTE if kind == ReminderKind.REEXAM else ""
    return Reminder.objects.create(
        kind=kind,
        patient=patient,
        encounter=encounter,
        channel=Channel.IVR,
        due_at=due,
        event_at=event_at,
        place=_clean(place)[:200],
        text=appointment_text(kind, event_at, place, item=item, note=note, now=now),
        created_by=_user(user),
        created_at=now,
    )


# --- refills ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refill:
    """When a discharge medication runs out and when to remind the patient."""

    dispensed_on: dt.date
    days_supply: int
    run_out: dt.date
    remind_on: dt.date


def compute_refill(medication: Medication, *, days_before: int = REFILL_DAYS_BEFORE) -> Refill:
    """Run-out date = dispensing day (the discharge date) + ⌊quantity ÷ daily amount⌋ days.

    Raises ``RefillError`` naming what is missing: the quantity, the daily amount (or zero), or
    the discharge date."""
    encounter = medication.encounter
    if encounter.discharged_at is None:
        raise RefillError(_("The encounter has no discharge date (the dispensing day)."))
    try:
        quantity = Decimal(medication.quantity) if medication.quantity is not None else None
        daily = Decimal(medication.daily_amount) if medication.daily_amount is not None else None
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise RefillError(_("The dispensed quantity or daily amount is not a number.")) from exc
    if quantity is None:
        raise RefillError(_("The dispensed quantity is missing."))
    if quantity <= 0:
        raise RefillError(_("The dispensed quantity is zero."))
    if daily is None:
        raise RefillError(_("The daily amount is missing."))
    if daily <= 0:
        raise RefillError(_("The daily amount is zero."))
    days_supply = int(quantity // daily)
    dispensed_on = _local(encounter.discharged_at).date()
    run_out = dispensed_on + dt.timedelta(days=days_supply)
    remind_on = run_out - dt.timedelta(days=max(0, days_before))
    return Refill(dispensed_on, days_supply, run_out, remind_on)


def create_refill_reminder(
    medication: Medication,
    *,
    days_before: int = REFILL_DAYS_BEFORE,
    user: Any = None,
    now: dt.datetime | None = None,
) -> tuple[Reminder, bool]:
    """The medication's one refill reminder: (reminder, created). Idempotent — a second call
    returns the reminder already made, whatever its status (a cancelled one stays cancelled).

    Raises ``RefillError`` (no date can be computed, or the supply has already run out) or
    ``ReminderError`` (the patient has no phone number)."""
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the medication: two jobs at once cannot both create its reminder.
        medication = (
            Medication.objects.select_for_update()
            .select_related("encounter__patient")
            .get(pk=medication.pk)
        )
        existing = Reminder.objects.filter(medication=medication, kind=ReminderKind.REFILL).first()
        if existing is not None:
            return existing, False
        refill = compute_refill(medication, days_before=days_before)
        today = _local(now).date()
        if refill.run_out < today:
            raise RefillError(
                _("The supply ran out on %(day)s.") % {"day": refill.run_out.isoformat()}
            )
        patient = medication.encounter.patient
        _check_channel(patient, Channel.IVR)
        due = max(timezone.make_aware(dt.datetime.combine(refill.remind_on, REMIND_AT)), now)
        reminder = Reminder.objects.create(
            kind=ReminderKind.REFILL,
            patient=patient,
            encounter=medication.encounter,
            medication=medication,
            channel=Channel.IVR,
            due_at=due,
            event_at=timezone.make_aware(dt.datetime.combine(refill.run_out, dt.time.min)),
            text=refill_text(medication, refill.run_out),
            created_by=_user(user),
            created_at=now,
        )
    return reminder, True


@dataclass
class RefillReport:
    """What ``generate_refill_reminders`` did: counts, and the medications skipped with why."""

    created: int = 0
    existing: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def recent_discharge_medications(now: dt.datetime, *, days: int = REFILL_LOOKBACK_DAYS) -> Any:
    """Discharge medications of encounters discharged in the last ``days`` days."""
    return (
        Medication.objects.filter(
            encounter__discharged_at__gt=now - dt.timedelta(days=days),
            encounter__discharged_at__lte=now,
        )
        .select_related("encounter__patient")
        .order_by("pk")
    )


def generate_refill_reminders(
    now: dt.datetime | None = None,
    *,
    days: int = REFILL_LOOKBACK_DAYS,
    days_before: int = REFILL_DAYS_BEFORE,
) -> RefillReport:
    """A refill reminder for every discharge medication of a recent discharge that has none yet
    (idempotent: one per medication). Bad data is skipped with the reason in the report."""
    now = now or timezone.now()
    report = RefillReport()
    has_refill = Reminder.objects.filter(medication=OuterRef("pk"), kind=ReminderKind.REFILL)
    report.existing = (
        recent_discharge_medications(now, days=days).filter(Exists(has_refill)).count()
    )
    todo = recent_discharge_medications(now, days=days).exclude(Exists(has_refill))
    for medication in todo.iterator(chunk_size=500):
        try:
            _reminder, created = create_refill_reminder(
                medication, days_before=days_before, now=now
            )
        except ReminderError as exc:
            report.skipped.append((medication.pk, str(exc)))
            continue
        if created:
            report.created += 1
        else:
            report.existing += 1
    return report


def refill_problems(patient: Patient) -> list[tuple[Medication, str]]:
    """The patient's discharge medications for which no refill date can be computed, with why
    (shown on the patient page so the data can be completed)."""
    problems = []
    medications = Medication.objects.filter(encounter__patient=patient).select_related("encounter")
    for medication in medications:
        try:
            compute_refill(medication)
        except RefillError as exc:
            problems.append((medication, str(exc)))
    return problems


# --- calls ------------------------------------------------------------------------------------


def _day_calendar(day: dt.date) -> dict[str, Any]:
    """A calendar closed every day whose only "holiday" is ``day``: a ``time`` node on it tells
    whether the call is made on that day."""
    return {"timezone": str(timezone.get_current_timezone()), "hours": [], "holidays": [str(day)]}


def reminder_texts(reminder: Reminder) -> dict[int, str]:
    """The text as said on the appointment day (0), the day before (1) and two days before (2),
    for re-examination and exam reminders whose text names the time as stored."""
    if reminder.event_at is None or reminder.kind not in (ReminderKind.REEXAM, ReminderKind.EXAM):
        return {}
    for phrase in (
        speak_when(reminder.event_at, with_year=True),
        speak_when(reminder.event_at),
    ):
        if phrase in reminder.text:
            return {
                offset: reminder.text.replace(phrase, f"{word}，{phrase}", 1)
                for offset, word in RELATIVE_DAYS.items()
            }
    return {}


def reminder_flow(reminder: Reminder, *, hospital: str | None = None) -> dict[str, Any]:
    """The ``careloop-flow/1`` document of a reminder call (validated by the engine's validator).

    greet → (today / tomorrow / the day after / another day) → the text → ``heard`` (the patient
    listened to the end) → "重听请按1，收到请按2" → 1: the text once more, then "收到请按2";
    2: ``confirmed`` → thanks, hang up. The flow sets ``outreach_result`` (``listened`` once the
    text was played, ``confirmed`` on 2), which the dialler copies into ``attempt.result``.
    """
    from careloop.outreach.automated import hospital_name

    hospital = _clean(hospital or hospital_name())
    title = KIND_TITLES.get(reminder.kind, "提醒")
    text = _clean(reminder.text)
    confirmed = {"next": "thanks", "set": {"outreach_result": "confirmed"}}
    nodes: dict[str, Any] = {
        "greet": {
            "type": "say",
            "say": f"您好，这里是{hospital}。{{{{patient_name}}}}您好，现在为您播放{title}。",
            "next": "when",
        },
    }
    calendars: dict[str, Any] = {}
    variants = reminder_texts(reminder)
    if variants:
        day = _local(reminder.event_at).date()  # type: ignore[arg-type]
        offsets = sorted(variants)
        for index, offset in enumerate(offsets):
            check = "when" if index == 0 else f"when_{offset}"
            fallback = f"when_{offsets[index + 1]}" if index + 1 < len(offsets) else "text_plain"
            calendars[f"day_{offset}"] = _day_calendar(day - dt.timedelta(days=offset))
            nodes[check] = {
                "type": "time",
                "calendar": f"day_{offset}",
                "holiday": f"text_{offset}",
                "open": fallback,
                "closed": fallback,
            }
            nodes[f"text_{offset}"] = {
                "type": "set",
                "vars": {"reminder_text": _clean(variants[offset])},
                "next": "text",
            }
        nodes["text_plain"] = {"type": "set", "vars": {"reminder_text": text}, "next": "text"}
    else:
        nodes["when"] = {"type": "set", "vars": {"reminder_text": text}, "next": "text"}
    nodes.update(
        {
            "text": {"type": "say", "say": "{{reminder_text}}", "barge_in": True, "next": "heard"},
            "heard": {"type": "set", "vars": {"outreach_result": "listened"}, "next": "ask"},
            "ask": {
                "type": "menu",
                "say": "重听请按1，收到请按2。",
                "options": {"1": "repeat", "2": confirmed},
                "var": "reminder_key",
                "on_failure": "thanks",
            },
            "repeat": {
                "type": "say",
                "say": "{{reminder_text}}",
                "barge_in": True,
                "next": "ask_again",
            },
            "ask_again": {
                "type": "menu",
                "say": "收到请按2。",
                "options": {"2": confirmed},
                "var": "reminder_key",
                "max_attempts": 1,
                "on_failure": "thanks",
            },
            "thanks": {"type": "hangup", "say": "感谢您的接听，祝您身体健康，再见。"},
        }
    )
    doc: dict[str, Any] = {
        "format": "careloop-flow/1",
        "id": f"reminder-{reminder.pk}",
        "version": 1,
        "name": title,
        "voice": "cmn",
        "start": "greet",
        "settings": {
            "first_digit_timeout": 6,
            "max_attempts": 2,
            "timezone": str(timezone.get_current_timezone()),
        },
        "prompts": {"invalid": "输入有误。", "no_input": "没有收到您的按键。"},
        "nodes": nodes,
    }
    if calendars:
        doc["calendars"] = calendars
    errors = validate_flow(doc)
    if errors:
        raise ReminderError("; ".join(errors))
    return doc


def _attempts(reminder: Reminder) -> Any:
    return ContactAttempt.objects.filter(reminder=reminder, purpose=Purpose.REMINDER)


def schedule_call(
    reminder: Reminder, *, now: dt.datetime | None = None, not_before: dt.datetime | None = None
) -> ContactAttempt:
    """Put the reminder's next call with the dialler."""
    from careloop.outreach.automated import patient_greeting_name

    now = now or timezone.now()
    made = _attempts(reminder).filter(state=AttemptState.ENDED).count()
    return dialler.schedule(
        reminder.patient,
        purpose=Purpose.REMINDER,
        channel=Channel.IVR,
        flow=reminder_flow(reminder),
        variables={
            "patient_name": patient_greeting_name(reminder.patient),
            "reminder_id": reminder.pk,
        },
        reminder=reminder,
        not_before=not_before or max(reminder.due_at, now),
        data={"reminder": reminder.pk},
        attempt_no=made + 1,
    )


def _finish(reminder: Reminder, status: str, result: str, now: dt.datetime) -> None:
    reminder.status = status
    reminder.result = result[:200]
    reminder.completed_at = now
    reminder.save(update_fields=["status", "result", "completed_at"])


def _expired(reminder: Reminder, now: dt.datetime) -> bool:
    """A reminder about something already past is no use: an appointment that has begun, a supply
    that ran out (the day after the run-out date)."""
    if reminder.event_at is None:
        return False
    if reminder.kind in (ReminderKind.REEXAM, ReminderKind.EXAM):
        return reminder.event_at <= now
    if reminder.kind == ReminderKind.REFILL:
        return reminder.event_at + dt.timedelta(days=1) <= now
    return False


def _too_late_reason(reminder: Reminder, result: str = "") -> str:
    if reminder.kind == ReminderKind.REFILL:
        if result:
            return _("Not delivered before the supply ran out (last call: %(result)s).") % {
                "result": result
            }
        return _("The supply ran out before the reminder was delivered.")
    if result:
        return _("Not delivered before the appointment (last call: %(result)s).") % {
            "result": result
        }
    return _("The appointment time passed before the reminder was delivered.")


def due_reminders(now: dt.datetime | None = None) -> Any:
    """Scheduled automated-call reminders that are due and have no call scheduled or under way."""
    now = now or timezone.now()
    pending = ContactAttempt.objects.filter(reminder=OuterRef("pk"), state__in=PENDING_STATES)
    return (
        Reminder.objects.filter(
            status=ReminderStatus.SCHEDULED, channel=Channel.IVR, due_at__lte=now
        )
        .exclude(Exists(pending))
        .select_related("patient")
        .order_by("due_at", "pk")
    )


def schedule_due_reminders(now: dt.datetime | None = None, *, limit: int = 2000) -> int:
    """Every due reminder without a call gets its first one (``dialler.schedule``). Returns how
    many calls were scheduled. Also the safety net for reminders left behind: one whose call was
    cancelled (e.g. a contact block) fails with that reason, one whose result was not handled is
    handled now, and appointment reminders whose time has come are given up."""
    now = now or timezone.now()
    expire_reminders(now)
    count = 0
    for reminder in due_reminders(now)[:limit]:
        last = _attempts(reminder).order_by("-pk").first()
        if last is None:
            schedule_call(reminder, now=now)
            count += 1
        elif last.state == AttemptState.CANCELLED:
            with transaction.atomic():
                locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
                if locked.status == ReminderStatus.SCHEDULED:
                    reason = last.reason or _("The call was cancelled.")
                    _finish(locked, ReminderStatus.FAILED, reason, now)
        else:
            on_result(last)
    return count


def expire_reminders(now: dt.datetime | None = None) -> int:
    """Reminders about something already past (see ``_expired``) fail; their calls are cancelled."""
    now = now or timezone.now()
    late = Reminder.objects.filter(status=ReminderStatus.SCHEDULED).filter(
        Q(kind__in=[ReminderKind.REEXAM, ReminderKind.EXAM], event_at__lte=now)
        | Q(kind=ReminderKind.REFILL, event_at__lte=now - dt.timedelta(days=1))
    )
    count = 0
    for reminder in late:
        with transaction.atomic():
            locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
            if locked.status != ReminderStatus.SCHEDULED or not _expired(locked, now):
                continue
            reason = _too_late_reason(locked)
            for attempt in _attempts(locked).filter(state=AttemptState.SCHEDULED):
                dialler.cancel(attempt, reason)
            _finish(locked, ReminderStatus.FAILED, reason, now)
            count += 1
    return count


def _result_label(result: str) -> str:
    return {
        "busy": _("busy"),
        "no_answer": _("no answer"),
        "rejected": _("call rejected"),
        "unreachable": _("number unreachable"),
        "failed": _("call failed"),
        "hung_up": _("hung up before the end"),
        "answered": _("answered, not listened to"),
        "confirmed": _("pressed 2 (received)"),
        "listened": _("listened to the end"),
    }.get(result, result)


def on_result(attempt: ContactAttempt) -> None:
    """The dialler's result handler for reminder calls (see the module docstring)."""
    if attempt.reminder_id is None:
        return
    now = attempt.ended_at or timezone.now()
    retry_at: dt.datetime | None = None
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update()
            .select_related("patient")
            .filter(pk=attempt.reminder_id)
            .first()
        )
        if reminder is None or reminder.status != ReminderStatus.SCHEDULED:
            return
        if attempt.state == AttemptState.BLOCKED:
            reason = attempt.reason or _("The contact policy does not allow the call.")
            _finish(reminder, ReminderStatus.FAILED, reason, now)
            return
        if attempt.state != AttemptState.ENDED:
            return
        if attempt.result in DELIVERED_RESULTS:
            _finish(reminder, ReminderStatus.DELIVERED, _result_label(attempt.result), now)
            return
        label = _result_label(attempt.result)
        made = _attempts(reminder).filter(state=AttemptState.ENDED).count()
        if attempt.result in WRONG_NUMBER_RESULTS:
            reason = _("The number could not be reached (%(result)s): check the number.") % {
                "result": label
            }
            _finish(reminder, ReminderStatus.FAILED, reason, now)
            return
        rules = policy.current_policy()
        if made >= rules.automated_attempts:
            reason = _("Not delivered after %(n)s automated calls (last: %(result)s).") % {
                "n": made,
                "result": label,
            }
            _finish(reminder, ReminderStatus.FAILED, reason, now)
            return
        if _attempts(reminder).filter(state__in=PENDING_STATES).exists():
            return
        retry_at = now + dt.timedelta(minutes=rules.automated_retry_minutes)
        if _expired(reminder, retry_at):
            _finish(reminder, ReminderStatus.FAILED, _too_late_reason(reminder, label), now)
            return
        reminder.result = (
            _("Call %(n)s: %(result)s; calling again later.") % {"n": made, "result": label}
        )[:200]
        reminder.save(update_fields=["result"])
        schedule_call(reminder, now=now, not_before=retry_at)


def cancel_reminder(
    reminder: Reminder, *, user: Any = None, reason: str = "", now: dt.datetime | None = None
) -> bool:
    """Cancel a scheduled reminder and its scheduled calls (a call already ringing finishes, its
    result is ignored). False when the reminder was no longer scheduled."""
    now = now or timezone.now()
    reason = reason or _("Reminder cancelled.")
    with transaction.atomic():
        locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
        if locked.status != ReminderStatus.SCHEDULED:
            return False
        for attempt in _attempts(locked).filter(state=AttemptState.SCHEDULED):
            dialler.cancel(attempt, reason)
        _finish(locked, ReminderStatus.CANCELLED, reason, now)
    reminder.refresh_from_db()
    return True
