"""A voice-notification campaign (F4.9) against the real engine: three patients behind one SIPp
phone that answers two of them and is busy (486) for the third. The campaign hands its calls to
the dialler, the dialler dials through the engine within the contact policy, the engine's webhook
ends the attempts and the campaign's result handler moves the targets; the report agrees."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.core.handlers.wsgi import WSGIHandler

from careloop.campaigns import queries, services
from careloop.campaigns.choices import CampaignKind, CampaignState, TargetState
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.contactcenter.tests.factories import make_patient_in
from careloop.outreach import dialler
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt, ContactPolicy
from tests.telephony.conftest import free_port, free_rtp_range, require_binary, wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]

BUSY_NUMBER = "13900000486"

#: One UAS for every patient: the INVITE for BUSY_NUMBER is refused 486, the others are answered
#: and kept up until the engine hangs up at the end of the notification.
SCENARIO = """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="CareLoop campaign patients">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="INVITE sip:@BUSY@@" search_in="msg" check_it="false" assign_to="busy"/>
    </action>
  </recv>
  <nop test="busy" next="1"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE" timeout="90000"/>
  <send next="2">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="1"/>
  <send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <label id="2"/>
</scenario>
"""


REQUESTS = threading.RLock()


def _serialized(handler):
    def call(self, environ, start_response):
        with REQUESTS:
            return handler(self, environ, start_response)

    return call


class Patients:
    """SIPp answering three calls, one of them busy."""

    def __init__(self, workdir: Path) -> None:
        binary = require_binary("sipp")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        scenario = workdir / "campaign_patients.xml"
        scenario.write_text(SCENARIO.replace("@BUSY@", BUSY_NUMBER))
        self.proc = subprocess.Popen(
            [
                binary,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_rtp_range(10)[0]),
                "-m",
                "3",
                "-nostdin",
                "-trace_err",
                "-timeout_error",
                "-timeout",
                "150s",
            ],
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.3)

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        errors = "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))
        return self.proc.returncode, out.decode(errors="replace")[-2000:] + errors

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def campaign_patients(tmp_path: Path, settings):
    phone = Patients(tmp_path / "sipp-campaign")
    settings.CC_PATIENT_DIAL = "sip:{number}@127.0.0.1:" + str(phone.port)
    yield phone
    phone.stop()


def test_voice_notification_campaign_reaches_two_and_fails_the_busy_one(
    hospital, client, engine_factory, campaign_patients, monkeypatch
) -> None:
    engine = engine_factory()
    ContactPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}],
            "ring_timeout": 15,
        },
    )
    campaign = Campaign.objects.create(
        name="复查通知",
        kind=CampaignKind.NOTIFICATION,
        department=hospital.cardio,
        message="{称呼}您好，这里是{科室}，请您{日期}上午来院复查。",
        windows=[{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}],
        concurrency=2,
        calls_per_minute=600,
        max_attempts=1,
        created_by=hospital.carol,
    )
    first = make_patient_in(hospital.cardio, name="张三", phone="13900000001")
    busy = make_patient_in(hospital.cardio, name="李四", phone=BUSY_NUMBER, sex="F")
    third = make_patient_in(hospital.cardio, name="王五", phone="13900000003")
    result = services.add_patients(campaign, [first, busy, third], acting_user=hospital.carol)
    assert result.added == 3

    client.force_login(hospital.carol)
    assert client.post(f"/campaigns/{campaign.pk}/state/start/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.RUNNING
    assert ContactAttempt.objects.filter(purpose="campaign").count() == 3

    # The test database is one in-memory SQLite connection shared by this thread and the live
    # server's threads: this thread writes only while no webhook is being applied (one lock
    # around every request of the live server), and when a call ends the dialler runs again in
    # the webhook's own request (dispatch_soon, run at once by Huey in immediate mode).
    from huey.contrib.djhuey import HUEY

    monkeypatch.setattr(HUEY, "immediate", True)
    monkeypatch.setattr(WSGIHandler, "__call__", _serialized(WSGIHandler.__call__))
    time.sleep(0.5)  # the three attempts are 0.1 s apart (600 calls a minute)
    with REQUESTS:
        assert dialler.dispatch() == 2  # the campaign's concurrency

    def all_final() -> bool:
        with REQUESTS:
            dialler.dispatch()
            return not CampaignTarget.objects.filter(
                campaign=campaign, state__in=[TargetState.PENDING, TargetState.IN_PROGRESS]
            ).exists()

    try:
        wait_until(all_final, timeout=90, what="every campaign target to be final")
    except AssertionError:
        print(engine.log()[-4000:])
        raise

    targets = {t.patient_id: t for t in CampaignTarget.objects.filter(campaign=campaign)}
    assert targets[first.pk].state == TargetState.DONE
    assert targets[third.pk].state == TargetState.DONE
    assert targets[first.pk].last_result in ("completed", "hung_up", "answered")
    assert targets[busy.pk].state == TargetState.FAILED
    assert targets[busy.pk].last_result == "busy" and targets[busy.pk].attempts == 1
    attempts = ContactAttempt.objects.filter(purpose="campaign")
    assert set(attempts.values_list("state", flat=True)) == {AttemptState.ENDED}
    assert all(a.started_at and a.ended_at for a in attempts)
    spoken = attempts.get(patient=busy).data["flow_variables"]["message"]
    assert spoken.startswith("李女士您好，这里是心内科") and "今天" in spoken

    wait_until(
        lambda: Campaign.objects.filter(pk=campaign.pk, state=CampaignState.FINISHED).exists(),
        timeout=10,
        what="the campaign to finish",
    )
    progress = queries.progress(campaign)
    assert (progress.done, progress.failed, progress.skipped, progress.total) == (2, 1, 0, 3)
    assert progress.failed_by_reason == {"busy": 1}
    assert str(progress.reach_rate) == "66.7"
    report = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "66.7%" in report and "139****0486" in report and BUSY_NUMBER not in report
    code, output = campaign_patients.wait(30)
    assert code == 0, output
