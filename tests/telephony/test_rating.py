"""Post-call satisfaction (F3.3) against the real engine: when the nurse leaves a conversation the
patient stays on the line, hears the rating prompt (eSpeak NG), presses a key (RFC 4733 from a SIPp
pcap) and the rating lands on the call. The nurse is baresip, the patient SIPp."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from rtp_pcap import Key, Silence, Tone, write_rtp_pcap  # tests/engine, on sys.path by conftest

from careloop.contactcenter import services
from careloop.contactcenter.choices import CallState, Direction, RatingStatus
from careloop.contactcenter.models import Call, CallEvent, Recording
from careloop.contactcenter.tests.factories import make_agent_phone, make_patient_in
from careloop.followup.tests.factories import make_task
from tests.telephony.conftest import (
    free_port,
    free_rtp_range,
    render_scenario,
    require_binary,
    wait_until,
)

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]


def _keypad_pcap(path: Path, *, talk_ms: int, then_key: str) -> None:
    """The patient talks (a tone), stays silent while the prompt plays, presses a key, listens."""
    write_rtp_pcap(
        path, [Tone(440, talk_ms, level=0.3), Silence(4000), Key(then_key), Silence(30_000)]
    )


def _talking(call: Call) -> Call:
    return wait_until(
        lambda: (
            Call.objects.filter(pk=call.pk, state=CallState.TALKING).exclude(bridge_id="").first()
        ),
        timeout=20,
        what="the nurse and the patient to be bridged",
    )


def _events(call: Call, leg: str) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call=call, leg=leg).order_by("seq"))


def _assert_key_came_during_the_rating(call: Call) -> None:
    """The key was pressed after the rating flow started (not typed ahead in the conversation)."""
    events = _events(call, "patient")
    types = [e.type for e in events]
    assert "flow.step" in types and "call.dtmf" in types, types
    first_step = next(e.seq for e in events if e.type == "flow.step")
    keys = [e.seq for e in events if e.type == "call.dtmf"]
    assert keys and min(keys) > first_step
    [finished] = [e for e in events if e.type == "flow.finished"]
    assert finished.data["flow_id"] == services.RATING_FLOW_ID
    assert finished.data["outcome"] == "hangup" and finished.data["node"] == "thanks"


def test_nurse_ends_the_call_with_the_rating_button_and_the_patient_presses_4(
    hospital, client, engine_factory, patient_phone, nurse_phone, tmp_path, settings
) -> None:
    settings.CC_RATING_AFTER_CALL = False  # the button asks for the rating whatever the setting
    engine = engine_factory()
    pcap = tmp_path / "patient-rates-4.pcap"
    _keypad_pcap(pcap, talk_ms=6000, then_key="4")
    patient_side = patient_phone(seconds=45, subs={"PCAP": str(pcap), "BYE_TIMEOUT": "45000"})
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    task = make_task(hospital.cardio, assignee=hospital.alice)

    client.force_login(hospital.alice)
    response = client.post(
        "/cc/call/", {"patient": task.patient_id, "task": task.pk, "number": "patient"}
    )
    assert response.status_code == 302
    call = _talking(Call.objects.get())
    time.sleep(2)
    assert client.post(f"/cc/calls/{call.pk}/hangup/rating/").status_code == 302

    # the nurse's side ends at once; the patient is still on the line, in the rating flow
    wait_until(
        lambda: Call.objects.filter(pk=call.pk, rating_status=RatingStatus.OFFERED).exists(),
        what="the patient to be put through to the rating",
    )
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.ended_at is not None
    rated = wait_until(
        lambda: Call.objects.filter(pk=call.pk, rating_status=RatingStatus.RATED).first(),
        timeout=40,
        what="the patient's rating",
    )
    assert rated.rating == 4 and rated.rated_at > rated.ended_at
    _assert_key_came_during_the_rating(call)

    # the engine said thanks and hung up the patient: SIPp got its BYE
    code, output = patient_side.wait(30)
    assert code == 0, output
    # the recording is the conversation only (it stopped when the nurse left)
    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), what="the recording"
    )
    talk = (rated.ended_at - rated.answered_at).total_seconds()
    assert recording.duration == pytest.approx(talk, abs=1.0)
    cdr = wait_until(
        lambda: CallEvent.objects.filter(call=call, leg="patient", type="cdr").first(),
        what="the patient's CDR",
    )
    assert cdr.data["billsec"] > talk + 3  # the patient stayed on for the rating
    assert task.patient.phone not in engine.log()

    # the contact policy counted the call (careloop.outreach): one attempt, ended answered
    from careloop.outreach.models import ContactAttempt

    attempt = ContactAttempt.objects.get(call=call)
    assert (attempt.purpose, attempt.task, attempt.state) == ("followup", task, "ended")
    assert attempt.result == "answered" and attempt.answered_at == rated.answered_at


def test_nurse_hanging_up_her_phone_puts_the_patient_through_by_default(
    hospital, client, engine_factory, patient_phone, nurse_phone, tmp_path
) -> None:
    engine_factory()
    pcap = tmp_path / "patient-rates-5.pcap"
    _keypad_pcap(pcap, talk_ms=6000, then_key="5")
    patient_side = patient_phone(seconds=45, subs={"PCAP": str(pcap), "BYE_TIMEOUT": "45000"})
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    patient = make_patient_in(hospital.cardio)

    client.force_login(hospital.alice)
    assert client.post(f"/cc/call/{patient.pk}/").status_code == 302
    call = _talking(Call.objects.get())
    time.sleep(2)
    nurse.stop_sync()  # baresip quits: it hangs up (BYE) like a nurse putting the phone down

    hung_up = wait_until(
        lambda: CallEvent.objects.filter(call=call, leg="agent", type="call.ended").first(),
        what="the nurse's BYE",
    )
    assert hung_up.data["hangup_by"] == "remote"
    rated = wait_until(
        lambda: Call.objects.filter(pk=call.pk, rating_status=RatingStatus.RATED).first(),
        timeout=40,
        what="the patient's rating",
    )
    assert rated.rating == 5 and rated.cause == "remote_hangup"
    _assert_key_came_during_the_rating(call)
    code, output = patient_side.wait(30)
    assert code == 0, output


def test_patient_hanging_up_first_hangs_up_the_nurse(
    hospital, client, engine_factory, patient_phone, nurse_phone
) -> None:
    """The bridge no longer hangs up the other party (hangup_on_exit false): the application does."""
    engine_factory()
    patient_phone(seconds=30)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    patient = make_patient_in(hospital.cardio)

    client.force_login(hospital.alice)
    assert client.post(f"/cc/call/{patient.pk}/").status_code == 302
    call = _talking(Call.objects.get())
    time.sleep(1)
    services.client().hangup(call.patient_leg_id)  # the patient's side ends first

    ended = wait_until(
        lambda: CallEvent.objects.filter(call=call, leg="agent", type="call.ended").first(),
        what="the nurse's leg to be hung up",
    )
    assert ended.data["hangup_by"] == "local"
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.rating_status == RatingStatus.NONE
    assert not CallEvent.objects.filter(call=call, type="flow.step").exists()
    assert services.client().get_call(call.agent_leg_id)["state"] == "ended"


def test_a_patient_calling_back_rates_the_call_too(
    hospital, client, engine_factory, nurse_phone, tmp_path
) -> None:
    from tests.telephony.test_call_back import CALLER

    engine = engine_factory()
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    make_patient_in(hospital.cardio, phone=CALLER)
    workdir = tmp_path / "caller"
    workdir.mkdir()
    pcap = workdir / "caller.pcap"
    _keypad_pcap(pcap, talk_ms=6000, then_key="3")
    scenario = render_scenario("uac_pcap.xml", workdir, PCAP=str(pcap), BYE_TIMEOUT="45000")
    caller = subprocess.Popen(
        [
            require_binary("sipp"),
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_rtp_range(10)[0]),
            "-m",
            "1",
            "-nostdin",
            "-trace_err",
            "-timeout_error",
            "-timeout",
            "60s",
            "-s",
            "followup",
            f"127.0.0.1:{engine.sip_port}",
        ],
        cwd=str(workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        call = wait_until(
            lambda: Call.objects.filter(direction=Direction.INBOUND).exclude(bridge_id="").first(),
            timeout=20,
            what="the call back to be put through",
        )
        time.sleep(2)
        assert services.hang_up_for_rating(call, acting_user=hospital.alice)
        rated = wait_until(
            lambda: Call.objects.filter(pk=call.pk, rating_status=RatingStatus.RATED).first(),
            timeout=40,
            what="the caller's rating",
        )
        assert rated.rating == 3
        _assert_key_came_during_the_rating(call)
        out, _ = caller.communicate(timeout=30)
        assert caller.returncode == 0, out.decode(errors="replace")[-2000:]
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.communicate()
