"""Agent phones registered at the Kamailio CareLoop configures: digest auth from AgentPhone,
presence from Kamailio's location table, click-to-call to the registered phone through it."""

from __future__ import annotations

import os
import stat
import time

import pytest
from django.core.management import call_command

from careloop.contactcenter import kamailio, services
from careloop.contactcenter.choices import CallState, PhoneKind
from careloop.contactcenter.models import AgentPhone, Call, Recording
from careloop.contactcenter.tests.factories import make_patient_in
from tests.telephony.conftest import free_port, wait_until

pytestmark = [pytest.mark.telephony, pytest.mark.django_db(transaction=True)]


def test_registered_phone_gets_presence_and_takes_click_to_call_through_kamailio(
    hospital,
    client,
    settings,
    tmp_path,
    engine_factory,
    kamailio_factory,
    nurse_phone,
    patient_phone,
) -> None:
    settings.CC_SIP_DOMAIN = "careloop.test"
    phone = services.save_agent_phone(
        hospital.alice, kind=PhoneKind.REGISTERED, acting_user=hospital.frank
    )
    services.save_agent_phone(hospital.bob, kind=PhoneKind.REGISTERED, acting_user=hospital.frank)
    engine_port, kam_port = free_port(), free_port()
    config = kamailio.KamailioSettings(
        listen=("127.0.0.1", kam_port),
        domain="careloop.test",
        engines=(("127.0.0.1", engine_port),),
        directory=tmp_path / "kamailio",
    )
    cfg = kamailio.write_config(config)
    users = (cfg.parent / "users.cfg").read_text()
    assert phone.sip_password not in users
    assert kamailio.ha1(phone.sip_username, "careloop.test", phone.sip_password) in users
    assert stat.S_IMODE(os.stat(cfg.parent / "users.cfg").st_mode) == 0o600
    proxy = kamailio_factory(cfg)

    engine_factory(extra=["--outbound-proxy", f"127.0.0.1:{kam_port}"], sip_port=engine_port)
    patient_side = patient_phone(seconds=20)
    # a wrong password is refused: bob's phone never registers
    nurse_phone(
        "bob",
        account=f"<sip:{AgentPhone.objects.get(user=hospital.bob).sip_username}@careloop.test>;"
        f'auth_pass=wrong;outbound="sip:127.0.0.1:{kam_port}";regint=60;answermode=auto',
    )
    nurse = nurse_phone(
        "alice",
        tone_hz=700,
        account=f"<sip:{phone.sip_username}@careloop.test>;auth_pass={phone.sip_password};"
        f'outbound="sip:127.0.0.1:{kam_port}";regint=60;answermode=auto;audio_codecs=PCMA',
    )
    wait_until(lambda: "200 OK" in nurse.log(), timeout=10, what="alice's phone to register")

    assert kamailio.refresh_presence(config) == 1, proxy.log()[-2000:]
    alice_phone = AgentPhone.objects.get(user=hospital.alice)
    assert alice_phone.is_registered() and alice_phone.last_registration_at
    assert not AgentPhone.objects.get(user=hospital.bob).is_registered()
    call_command("kamailio_config", "--presence", "--output", str(config.path))

    patient = make_patient_in(hospital.cardio)
    client.force_login(hospital.alice)
    assert client.post("/cc/call/", {"patient": patient.pk}).status_code == 302
    call = wait_until(
        lambda: Call.objects.filter(state=CallState.TALKING).first(),
        timeout=20,
        what=f"the call through kamailio\n{proxy.log()[-3000:]}",
    )
    time.sleep(2)
    services.hang_up(call, acting_user=hospital.alice)
    recording = wait_until(
        lambda: Recording.objects.filter(call=call).first(), timeout=20, what="the recording"
    )
    assert recording.duration > 1.5
    code, output = patient_side.wait(20)
    assert code == 0, output


def test_management_command_writes_the_configuration(hospital, tmp_path) -> None:
    services.save_agent_phone(hospital.alice, kind=PhoneKind.REGISTERED, acting_user=None)
    call_command(
        "kamailio_config",
        "--listen",
        "10.0.0.2:5060",
        "--engine",
        "10.0.0.5:5070",
        "--engine",
        "10.0.0.6:5070",
        "--output",
        str(tmp_path),
    )
    cfg = (tmp_path / "kamailio.cfg").read_text()
    assert "listen=udp:10.0.0.2:5060" in cfg
    assert (tmp_path / "dispatcher.list").read_text() == (
        "1 sip:10.0.0.5:5070\n1 sip:10.0.0.6:5070\n"
    )
    assert "agent" in (tmp_path / "users.cfg").read_text()


def test_a_phone_set_up_while_kamailio_runs_registers_within_the_presence_refresh(
    hospital, settings, tmp_path, kamailio_factory, nurse_phone
) -> None:
    """users.cfg is read at start; new accounts reach the running Kamailio over its control
    socket (htable.sets) on the next presence refresh — no restart."""
    settings.CC_SIP_DOMAIN = "careloop.test"
    kam_port = free_port()
    config = kamailio.KamailioSettings(
        listen=("127.0.0.1", kam_port),
        domain="careloop.test",
        engines=(("127.0.0.1", free_port()),),
        directory=tmp_path / "kamailio",
    )
    old = services.save_agent_phone(hospital.bob, kind=PhoneKind.REGISTERED, acting_user=None)
    kamailio_factory(kamailio.write_config(config))
    assert kamailio._loaded_users(config) == {old.sip_username}

    phone = services.save_agent_phone(hospital.alice, kind=PhoneKind.REGISTERED, acting_user=None)
    AgentPhone.objects.filter(pk=old.pk).delete()
    assert kamailio.refresh_presence(config) == 0
    assert kamailio._loaded_users(config) == {phone.sip_username}
    assert phone.sip_username in (config.path / "users.cfg").read_text()
    nurse = nurse_phone(
        "alice",
        account=f"<sip:{phone.sip_username}@careloop.test>;auth_pass={phone.sip_password};"
        f'outbound="sip:127.0.0.1:{kam_port}";regint=60;answermode=auto',
    )
    wait_until(lambda: "200 OK" in nurse.log(), timeout=10, what="the new phone to register")
    assert kamailio.refresh_presence(config) == 1
    assert AgentPhone.objects.get(user=hospital.alice).is_registered()


def test_embedded_mode_starts_kamailio_for_softphones(hospital, settings, tmp_path) -> None:
    from careloop.core import sipproxy

    settings.DATA_DIR = str(tmp_path)
    said: list[str] = []
    layout = sipproxy.SipLayout(kamailio_port=free_port(), engine_port=free_port())
    child = sipproxy.start_kamailio(said.append, layout)  # no agent phone yet: still parses
    assert child is not None, said
    try:
        config = kamailio.KamailioSettings(
            listen=(layout.host, layout.kamailio_port), directory=tmp_path / "kamailio"
        )
        assert config.ctl_socket.exists()
        assert kamailio._loaded_users(config) == set()
        services.save_agent_phone(hospital.alice, kind=PhoneKind.REGISTERED, acting_user=None)
        kamailio.sync_users(config)
        assert kamailio._loaded_users(config) == {f"agent{hospital.alice.pk}"}
        assert layout.engine_env["CARELOOP_ENGINE_OUTBOUND_PROXY"].endswith(
            f":{layout.kamailio_port}"
        )
        assert f":{layout.kamailio_port}" in sipproxy.softphone_help(layout, "careloop.local")
        # the port is taken now: a second one says so instead of failing the demo
        assert sipproxy.start_kamailio(said.append, layout) is None
        assert "did not start" in said[-1]
    finally:
        child.stop()
