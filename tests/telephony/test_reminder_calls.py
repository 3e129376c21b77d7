"""A re-examination reminder played by automated call, end to end (F2.6, issue 4 item 4): the
dialler places a real call through the engine to a SIPp patient, the engine speaks the reminder
with eSpeak NG ("…复查时间是明天，…"), the patient presses 2 (RFC 4733 from a pcap) after hearing
it, and the engine's webhooks reach the application (Django's live server): the attempt ends
answered with ``confirmed`` and the reminder is delivered."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import wave
from pathlib import Path

import pytest
from django.utils import timezone, translation
from rtp_pcap import Key, Silence, write_rtp_pcap  # tests/engine, on sys.path by conftest

from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, CallEvent
from careloop.contactcenter.tests.factories import make_patient_in
from careloop.engine.flow import render_text
from careloop.engine.tts import make_tts
from careloop.outreach import dialler, reminders
from careloop.outreach.choices import AttemptState, Purpose, ReminderKind, ReminderStatus
from careloop.outreach.models import ContactAttempt, Reminder
from careloop.outreach.tests.dialler_fakes import open_policy
from tests.telephony.conftest import wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]

ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]


def _spoken_seconds(texts: list[str], workdir: Path) -> float:
    """How long eSpeak NG takes to say ``texts`` (the engine's voice and speed)."""
    tts = make_tts("espeak-ng", workdir, voice="cmn")
    total = 0.0
    for i, text in enumerate(texts):
        out = workdir / f"prompt{i}.wav"
        asyncio.run(tts.synthesize(text, "cmn", out))
        with wave.open(str(out)) as wav:
            total += wav.getnframes() / wav.getframerate()
    return total


def _not_at_midnight() -> None:
    """The all-day contact window ends at 23:59: do not start a call in the last minute."""
    local = timezone.localtime()
    if (local.hour, local.minute) == (23, 59):
        time.sleep(61 - local.second)


def _ended(reminder_id: int) -> ContactAttempt | None:
    return ContactAttempt.objects.filter(reminder_id=reminder_id, state=AttemptState.ENDED).first()


def test_patient_hears_the_reexam_reminder_and_presses_2(
    hospital, tmp_path, engine_factory, patient_phone
) -> None:
    engine = engine_factory()
    open_policy(windows=ALL_DAY)
    _not_at_midnight()
    now = timezone.now()
    tomorrow = timezone.localtime(now).date() + dt.timedelta(days=1)
    event_at = timezone.make_aware(dt.datetime.combine(tomorrow, dt.time(9, 30)))
    patient = make_patient_in(hospital.cardio)
    reminder = reminders.create_appointment_reminder(
        patient,
        kind=ReminderKind.REEXAM,
        event_at=event_at,
        place="门诊楼三楼心内科诊室",
        due_at=now,
        now=now,
    )

    # The patient listens to the greeting and the whole text, then presses 2 while the engine
    # asks "重听请按1，收到请按2".
    flow = reminders.reminder_flow(reminder)
    greeting = render_text(flow["nodes"]["greet"]["say"], {"patient_name": "张先生"})
    said = flow["nodes"]["text_1"]["vars"]["reminder_text"]
    assert said.startswith("您的复查时间是明天，")
    listen = _spoken_seconds([greeting, said], tmp_path)
    pcap = tmp_path / "presses-2.pcap"
    write_rtp_pcap(pcap, [Silence(int((listen + 2.5) * 1000)), Key("2"), Silence(20000)])
    phone = patient_phone(subs={"PCAP": str(pcap), "BYE_TIMEOUT": str(int(listen * 1000) + 40000)})

    assert reminders.schedule_due_reminders() == 1
    assert dialler.dispatch() == 1

    attempt = wait_until(
        lambda: _ended(reminder.pk), timeout=listen + 40, what="the reminder call to end"
    )
    assert attempt.purpose == Purpose.REMINDER and attempt.answered_at is not None
    assert attempt.result == "confirmed", attempt.data
    assert attempt.data["variables"]["reminder_key"] == "2"
    delivered = wait_until(
        lambda: Reminder.objects.filter(pk=reminder.pk, status=ReminderStatus.DELIVERED).first(),
        timeout=10,
        what="the reminder to be delivered",
    )
    with translation.override("zh-hans"):
        chinese = reminders._result_label("confirmed")
    assert delivered.result in ("pressed 2 (received)", chinese)
    assert delivered.completed_at is not None

    call = Call.objects.get(pk=attempt.call_id)
    assert call.agent is None and call.state == CallState.ENDED and call.answered_at
    steps = [
        e.data.get("node")
        for e in CallEvent.objects.filter(call=call, type="flow.step").order_by("seq")
    ]
    # the engine chose the "tomorrow" wording, played the whole text, then asked for the key
    assert steps[:6] == ["greet", "when", "when_1", "text_1", "text", "heard"], steps
    assert steps[-2:] == ["ask", "thanks"], steps
    keys = CallEvent.objects.filter(call=call, type="call.dtmf")
    first_ask = CallEvent.objects.get(call=call, type="flow.step", data__node="ask")
    assert keys.exists() and min(k.seq for k in keys) > first_ask.seq
    code, output = phone.wait(30)
    assert code == 0, output
    assert patient.phone not in engine.log()
