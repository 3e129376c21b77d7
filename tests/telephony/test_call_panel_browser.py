"""The call panel in Chromium: click "call", watch the state change live over the websocket,
hang up, and the recording appears — against the real engine, SIPp and baresip."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from careloop.contactcenter.choices import CallState
from careloop.contactcenter.models import Call, Recording
from careloop.contactcenter.tests.factories import make_agent_phone, make_patient_in
from tests.browser.conftest import page  # noqa: F401  (the Chromium fixture)
from tests.telephony.conftest import wait_until

pytestmark = [
    pytest.mark.telephony,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_call_panel_shows_the_call_live_and_plays_the_recording(
    hospital,
    client,
    asgi_server,
    engine_factory,
    patient_phone,
    nurse_phone,
    page,  # noqa: F811
) -> None:
    engine_factory(app_url=asgi_server)
    patient_phone(seconds=30)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    patient = make_patient_in(hospital.cardio)
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

    page.goto(f"{asgi_server}/cc/call/{patient.pk}/")
    content = page.content()
    assert patient.phone not in content and patient.phone[-4:] in content
    page.get_by_role("button", name="呼叫").click()
    state = page.locator(".cc-state")
    state.wait_for()
    page.wait_for_function(
        "document.querySelector('.cc-state').dataset.state === 'talking'", timeout=20_000
    )
    assert state.inner_text() == "通话中"
    page.wait_for_function(
        "/^0:0[2-9]$/.test(document.querySelector('.cc-duration').textContent)", timeout=10_000
    )
    call = Call.objects.get()
    assert call.state == CallState.TALKING
    page.get_by_role("button", name="挂断").click()
    page.wait_for_function(
        "document.querySelector('.cc-state').dataset.state === 'ended'", timeout=20_000
    )
    wait_until(lambda: Recording.objects.filter(call=call).exists(), what="the recording")
    audio = page.locator(".cc-recordings audio")  # added live by the websocket update
    audio.wait_for(state="attached")
    recording = Recording.objects.get(call=call)
    assert audio.get_attribute("src") == f"/cc/recordings/{recording.pk}/"
    assert patient.phone not in page.content()

    page.goto(f"{asgi_server}/cc/calls/{call.pk}/")
    assert page.locator(".cc-state").inner_text() == "已结束"
    assert page.locator("audio").get_attribute("src") == f"/cc/recordings/{recording.pk}/"
    played = page.request.get(f"{asgi_server}/cc/recordings/{recording.pk}/")
    assert played.ok and played.body()[:4] == b"OggS"


def test_call_back_pops_the_patients_record_on_the_nurses_screen(
    hospital,
    client,
    asgi_server,
    engine_factory,
    nurse_phone,
    tmp_path,
    page,  # noqa: F811
) -> None:
    from tests.telephony.test_call_back import CALLER, _patient_calls

    engine = engine_factory(app_url=asgi_server)
    nurse = nurse_phone("alice", tone_hz=700)
    make_agent_phone(hospital.alice, uri=nurse.uri)
    patient = make_patient_in(hospital.cardio, phone=CALLER)
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
    page.goto(f"{asgi_server}/cc/phone/")
    page.wait_for_function("window.ccCallJs === true")
    page.wait_for_timeout(500)  # the agent websocket is open

    caller = _patient_calls(engine, tmp_path)
    try:
        popped = wait_until(
            lambda: (
                [p.url for p in page.context.pages if "/patients/" in p.url]
                or [
                    page.locator("#cc-agent a").get_attribute("href")
                    for _ in [0]
                    if page.locator("#cc-agent a").count()
                ]
            ),
            timeout=20,
            what="the screen pop",
        )
        assert popped[0].endswith(f"/patients/{patient.pk}/")
        assert page.url.endswith("/cc/phone/"), "the nurse's page must not be replaced"
        call = wait_until(lambda: Call.objects.filter(state=CallState.TALKING).first())
        assert call.patient == patient and call.agent == hospital.alice
        from careloop.contactcenter import services

        services.hang_up(call, acting_user=hospital.alice)
    finally:
        caller.communicate(timeout=30)
