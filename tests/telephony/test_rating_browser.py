"""The rating button of the call panel in Chromium, against the real engine: the nurse ends her
side with "结束并转满意度评价", the panel says the patient is rating, and the patient's key (SIPp,
RFC 4733) shows up live in the panel over the websocket."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from careloop.contactcenter.choices import RatingStatus
from careloop.contactcenter.models import Call
from careloop.contactcenter.tests.factories import make_agent_phone, make_patient_in
from tests.browser.conftest import page  # noqa: F401  (the Chromium fixture)
from tests.telephony.test_rating import _keypad_pcap

pytestmark = [
    pytest.mark.telephony,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_the_panel_puts_the_patient_through_to_the_rating_and_shows_the_rating_live(
    hospital,
    client,
    asgi_server,
    engine_factory,
    patient_phone,
    nurse_phone,
    tmp_path,
    page,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    engine_factory(app_url=asgi_server)
    pcap = tmp_path / "patient-rates-4.pcap"
    _keypad_pcap(pcap, talk_ms=6000, then_key="4")
    patient_side = patient_phone(seconds=45, subs={"PCAP": str(pcap), "BYE_TIMEOUT": "45000"})
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
    page.get_by_role("button", name="呼叫").click()
    page.locator(".cc-state").wait_for()
    page.wait_for_function(
        "document.querySelector('.cc-state').dataset.state === 'talking'", timeout=20_000
    )
    page.wait_for_function(
        "/^0:0[2-9]$/.test(document.querySelector('.cc-duration').textContent)", timeout=10_000
    )
    page.get_by_role("button", name="结束并转满意度评价").click()

    page.wait_for_function(
        "document.querySelector('.cc-state').dataset.state === 'ended'", timeout=20_000
    )
    expect(page.locator(".cc-state")).to_have_text("已结束")
    expect(page.get_by_role("button", name="挂断", exact=True)).to_be_hidden()
    rating = page.locator(".cc-rating")
    page.wait_for_function(
        "['offered', 'rated'].includes(document.querySelector('.cc-rating').dataset.ratingStatus)",
        timeout=20_000,
    )
    page.wait_for_function(
        "document.querySelector('.cc-rating').dataset.ratingStatus === 'rated'", timeout=40_000
    )
    expect(rating).to_have_text("患者评价：4/5 分")
    call = Call.objects.get()
    assert call.rating == 4 and call.rating_status == RatingStatus.RATED
    code, output = patient_side.wait(30)
    assert code == 0, output

    # the call's page says it too
    page.goto(f"{asgi_server}/cc/calls/{call.pk}/")
    expect(page.locator(".cc-rating")).to_have_text("患者评价：4/5 分")
