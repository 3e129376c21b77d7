"""A nurse's follow-up call from her task page, in Chromium, against the real engine (baresip is
her phone, SIPp the patient): call, talk, hang up, record "reached" with the questionnaire's
answers on the same page, and the call's recording shows on that follow-up record and plays."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.utils import translation
from django.utils.translation import gettext

from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, Recording
from careloop.contactcenter.tests.factories import make_agent_phone
from careloop.followup.choices import Outcome, TaskStatus
from careloop.followup.models import FollowUpRecord
from careloop.followup.tests.factories import make_plan, make_questionnaire, make_task
from tests.browser.conftest import page  # noqa: F401  (the Chromium fixture)

pytestmark = [
    pytest.mark.telephony,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def _zh(message: str) -> str:
    with translation.override("zh-hans"):
        return gettext(message)


def test_nurse_calls_from_her_task_page_records_the_outcome_and_finds_the_recording(
    hospital,
    client,
    asgi_server,
    engine_factory,
    patient_phone,
    nurse_phone,
    page,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    engine_factory(app_url=asgi_server)
    patient_phone(seconds=40)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    questionnaire = make_questionnaire()
    plan = make_plan(
        hospital.cardio,
        name="心衰出院随访",
        steps=[{"day_offset": 3, "title": "出院3天电话随访", "questionnaire": questionnaire}],
    )
    task = make_task(hospital.cardio, assignee=hospital.alice, plan=plan)
    patient = task.patient
    client.force_login(hospital.alice)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": asgi_server,
            }
        ]
    )

    # The task page: the panel offers the masked number only.
    task_url = f"/followup/tasks/{task.pk}/"
    page.goto(f"{asgi_server}{task_url}?next={task_url}")
    assert patient.phone not in page.content() and patient.phone[-4:] in page.content()
    expect(page.locator("#outcome-form")).to_contain_text("您现在的体温是多少?")

    # Call: her phone (baresip) answers, the patient (SIPp) answers, the panel says 通话中.
    page.locator(".cc-panel").get_by_role("button", name="呼叫").click()
    state = page.locator(".cc-panel .cc-state")
    state.wait_for()
    page.wait_for_function(
        "document.querySelector('.cc-panel .cc-state').dataset.state === 'talking'",
        timeout=20_000,
    )
    expect(state).to_have_text("通话中")
    call = Call.objects.get()
    assert call.task == task and call.state == CallState.TALKING
    page.wait_for_function(
        "/^0:0[2-9]$/.test(document.querySelector('.cc-panel .cc-duration').textContent)",
        timeout=10_000,
    )
    expect(
        page.locator(".cc-panel").get_by_role("button", name="结束并转满意度评价")
    ).to_be_visible()

    # She hangs up; the recording appears in the panel.
    page.locator(".cc-panel").get_by_role("button", name="挂断", exact=True).click()
    page.wait_for_function(
        "document.querySelector('.cc-panel .cc-state').dataset.state === 'ended'",
        timeout=20_000,
    )
    expect(state).to_have_text("已结束")
    page.locator(".cc-panel .cc-recordings audio").wait_for(state="attached", timeout=20_000)
    recording = Recording.objects.get(call=call)
    call.refresh_from_db()
    assert call.rating_status == "skipped"  # a plain hang-up: no rating

    # The outcome with the questionnaire's answers, on the same page.
    page.fill('input[name="q_temperature"]', "36.8")
    page.check('input[name="q_medication"][value="yes"]')
    page.fill('textarea[name="q_remarks"]', "偶有乏力")
    page.check(f'input[name="outcome"][value="{Outcome.REACHED}"]')
    page.fill('textarea[name="note"]', "电话随访，恢复良好")
    page.click("#outcome-form button[type=submit]")
    page.wait_for_url(f"{asgi_server}{task_url}")
    expect(page.locator(".messages")).to_be_visible()

    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    record = FollowUpRecord.objects.select_related("response").get(task=task)
    assert record.outcome == Outcome.REACHED and record.recorded_by == hospital.alice
    assert record.response.answers["temperature"] == 36.8
    assert record.response.answers["medication"] in (True, "yes")
    recording.refresh_from_db()
    assert recording.followup_record == record

    # The follow-up record on the page carries the recording...
    attempts = page.locator("#attempts")
    expect(attempts).to_contain_text(_zh(str(Outcome.REACHED.label)))
    expect(attempts).to_contain_text(_zh("questionnaire answered"))
    linked = attempts.locator(f'.cc-recording[data-record-id="{record.pk}"]')
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text(_zh(str(Outcome.REACHED.label)))
    audio = linked.locator("audio")
    src = audio.get_attribute("src")
    assert src == f"/cc/recordings/{recording.pk}/"
    assert patient.phone not in page.content()

    # ...and it plays: the browser loads it (Ogg/Opus metadata) and the server answers 200/206.
    duration = page.evaluate(
        """(el) => new Promise((resolve, reject) => {
            el.preload = "metadata";
            el.addEventListener("loadedmetadata", () => resolve(el.duration), {once: true});
            el.addEventListener("error", () => reject(new Error("audio error")), {once: true});
            el.load();
        })""",
        audio.element_handle(),
    )
    assert duration == pytest.approx(recording.duration, abs=0.5)
    whole = page.request.get(f"{asgi_server}{src}")
    assert whole.status == 200 and whole.body()[:4] == b"OggS"
    part = page.request.get(f"{asgi_server}{src}", headers={"Range": "bytes=0-99"})
    assert part.status == 206 and len(part.body()) == 100
