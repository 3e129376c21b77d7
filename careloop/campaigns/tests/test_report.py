"""The results report, the failed-numbers export and the live progress over the websocket."""

from __future__ import annotations

import io
import json

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter
from django.utils import timezone
from openpyxl import load_workbook

from careloop.audit.models import AuditAction, AuditEvent
from careloop.campaigns import queries, services
from careloop.campaigns.choices import CampaignKind, CampaignState, TargetState, result_label
from careloop.campaigns.routing import websocket_urlpatterns
from careloop.campaigns.tests.factories import make_campaign, make_patient_in, make_target
from careloop.followup.tests.factories import make_questionnaire

pytestmark = pytest.mark.django_db


def _finished_campaign(hospital):
    campaign = make_campaign(hospital.cardio, state=CampaignState.FINISHED)
    now = timezone.now()
    done = make_target(
        campaign, state=TargetState.DONE, last_result="completed", attempts=1, finished_at=now
    )
    busy = make_target(
        campaign,
        make_patient_in(hospital.cardio, name="赵六", phone="13912345678"),
        state=TargetState.FAILED,
        last_result="busy",
        attempts=3,
        finished_at=now,
    )
    unreachable = make_target(
        campaign,
        make_patient_in(hospital.cardio, name="钱七", phone="13787654321"),
        state=TargetState.FAILED,
        last_result="unreachable",
        attempts=1,
        finished_at=now,
    )
    skipped = make_target(
        campaign, state=TargetState.SKIPPED, skip_reason="deceased", finished_at=now
    )
    return campaign, done, busy, unreachable, skipped


def test_report_counts_results_and_reach_rate_with_masked_numbers(client, hospital):
    campaign, *_ = _finished_campaign(hospital)
    progress = queries.progress(campaign)
    assert (progress.done, progress.failed, progress.skipped) == (1, 2, 1)
    assert str(progress.reach_rate) == "33.3"
    counts = {row["code"]: row["count"] for row in queries.result_counts(campaign)}
    assert counts == {"completed": 1, "busy": 1, "unreachable": 1, "deceased": 1}

    client.force_login(hospital.carol)
    html = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "33.3%" in html
    assert "139****5678" in html and "13912345678" not in html
    assert "赵六" in html and "钱七" in html


def test_export_has_real_numbers_for_those_who_may_reveal_them_and_is_audited(client, hospital):
    campaign, _done, busy, _unreachable, _skipped = _finished_campaign(hospital)
    client.force_login(hospital.carol)  # supervisor: may reveal numbers
    response = client.get(f"/campaigns/{campaign.pk}/report/export/")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 3  # header + the two failed numbers
    assert rows[1][:3] == (busy.patient_id, "赵六", "13912345678")
    assert rows[2][1:3] == ("钱七", "13787654321")
    assert rows[1][5] == result_label("busy") and rows[1][6] == 3
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.user == hospital.carol
    assert event.detail == {
        "list": "campaign_failed_numbers",
        "campaign": campaign.pk,
        "rows": 2,
        "full_phone": True,
    }
    assert "139" not in json.dumps(event.detail)


def test_export_masks_numbers_without_the_reveal_permission(client, hospital):
    from django.contrib.auth.models import Permission

    campaign, *_ = _finished_campaign(hospital)
    # henry (department handler) is given the right to export but not to reveal numbers
    henry = hospital.henry
    henry.user_permissions.add(
        Permission.objects.get(content_type__app_label="campaigns", codename="view_campaign"),
        Permission.objects.get(content_type__app_label="patients", codename="export_patients"),
    )
    client.force_login(henry)
    response = client.get(f"/campaigns/{campaign.pk}/report/export/")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    phones = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert phones == ["139****5678", "137****4321"]
    assert AuditEvent.objects.get(action=AuditAction.EXPORT).detail["full_phone"] is False


def test_questionnaire_report_summarises_the_answers(client, hospital):
    version = make_questionnaire().current_version
    campaign = make_campaign(
        hospital.cardio, kind=CampaignKind.QUESTIONNAIRE, questionnaire=version, message=""
    )
    for temperature, medication in ((37.0, True), (38.5, False), (39.0, True)):
        make_target(
            campaign,
            state=TargetState.DONE,
            last_result="completed",
            answers={"temperature": temperature, "medication": medication},
        )
    summaries = {s.key: s for s in queries.answers_summary(campaign)}
    assert str(summaries["temperature"].average) == "38.2"
    assert summaries["temperature"].maximum == 39
    assert summaries["medication"].answered == 3
    assert dict(summaries["medication"].counts) in ({"是": 2, "否": 1}, {"Yes": 2, "No": 1})
    client.force_login(hospital.erin)
    html = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "38.2" in html


class Socket(ApplicationCommunicator):
    """A websocket client for an ASGI app (channels.testing needs daphne, not installed)."""

    def __init__(self, app, path: str, user) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "headers": [],
            "query_string": b"",
            "subprotocols": [],
            "user": user,
        }
        super().__init__(app, scope)

    async def connect(self) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        reply = await self.receive_output(3)
        return reply["type"] == "websocket.accept", reply.get("code")

    async def receive_json_from(self, timeout: float = 3) -> dict:
        reply = await self.receive_output(timeout)
        return json.loads(reply["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


@pytest.mark.django_db(transaction=True)
async def test_progress_is_pushed_live_after_commit_and_other_departments_are_refused(
    hospital, open_all_day
):
    campaign = await sync_to_async(make_campaign)(hospital.cardio, kind=CampaignKind.PREVIEW)
    await sync_to_async(make_target)(campaign)
    await sync_to_async(make_target)(campaign)
    app = URLRouter(websocket_urlpatterns)
    socket = Socket(app, f"/ws/campaigns/{campaign.pk}/", hospital.carol)
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from()
    assert first["progress"]["pending"] == 2 and first["progress"]["state"] == "draft"

    await sync_to_async(services.start)(campaign, acting_user=hospital.carol)
    started = await socket.receive_json_from()
    assert started["progress"]["state"] == "running"
    target = await sync_to_async(services.claim_next)(campaign, acting_user=hospital.alice)
    claimed = await socket.receive_json_from()
    assert claimed["progress"]["in_progress"] == 1
    await sync_to_async(services.record_preview_outcome)(
        target, outcome="wrong_number", acting_user=hospital.alice
    )
    failed = await socket.receive_json_from()
    assert failed["progress"]["failed"] == 1
    assert failed["progress"]["failed_by_reason"][0]["code"] == "wrong_number"
    assert "phone" not in json.dumps(failed) and "138" not in json.dumps(failed)
    await socket.disconnect()

    other = Socket(app, f"/ws/campaigns/{campaign.pk}/", hospital.bob)
    connected, code = await other.connect()
    assert not connected and code == 4404
    nobody = Socket(app, f"/ws/campaigns/{campaign.pk}/", hospital.henry)
    connected, code = await nobody.connect()
    assert not connected and code == 4404
