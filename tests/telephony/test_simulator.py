"""The patient simulator (issue 4 item 9) against a real engine placing real calls.

The simulator starts its own engine and answers, refuses or lets ring the calls of another
engine by the dialled number; answering patients press their keys with RFC 4733 events. First
with a small flow originated through the engine API (the keys the flow gathered, the dial results
by number), then through the application: the dialler calls due automated follow-up steps, the
simulated patients press the answers to the questionnaire flowgen built, and the answers land in
the response model — the unwell patient's raising alerts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from websockets.sync.client import connect

from careloop.alerts.models import Alert
from careloop.contactcenter.models import Recording
from careloop.demo import automated as demo_automated
from careloop.demo.simulator import (
    ANSWER,
    BUSY,
    NO_ANSWER,
    WRONG_NUMBER,
    CallPlan,
    Persona,
    Rates,
    SimulatorThread,
    keys_for_answers,
    number_with,
    persona_answers,
    persona_for,
)
from careloop.followup import states
from careloop.followup.choices import Outcome
from careloop.followup.models import FollowUpRecord, Task
from careloop.outreach import automated, dialler
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt
from careloop.outreach.tests.dialler_fakes import make_ivr_task, open_policy
from tests.telephony.conftest import EngineProcess, free_port, free_rtp_range, wait_until

pytestmark = [pytest.mark.telephony]

ALL_DAY = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "23:59"}]

GATHER_FLOW: dict[str, Any] = {
    "format": "careloop-flow/1",
    "id": "sim-test",
    "version": 1,
    "start": "consent",
    "settings": {"first_digit_timeout": 8, "inter_digit_timeout": 4, "max_attempts": 1},
    "nodes": {
        "consent": {
            "type": "menu",
            "say": "方便请按1",
            "var": "consent",
            "options": {"1": "temperature"},
        },
        "temperature": {
            "type": "gather",
            "say": "请输入体温，以井号键结束",
            "var": "temperature",
            "terminators": "#",
            "pattern": r"[0-9]{1,5}(\*[0-9]{1,2})?",
            "next": "medication",
        },
        "medication": {
            "type": "menu",
            "say": "按时服药请按1，没有请按2",
            "var": "medication",
            "options": {"1": "bye", "2": "bye"},
        },
        "bye": {"type": "hangup", "say": "再见"},
    },
}


def _simulator(**kwargs: Any) -> SimulatorThread:
    low, high = free_rtp_range(200)
    return SimulatorThread(
        sip_listen=f"127.0.0.1:{free_port()}",
        rtp_ports=f"{low}-{high}",
        answer_delay=0.3,
        key_gap=0.3,
        **kwargs,
    ).start()


@pytest.fixture
def simulator_factory() -> Iterator[Any]:
    started: list[SimulatorThread] = []

    def start(**kwargs: Any) -> SimulatorThread:
        sim = _simulator(**kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


class Events:
    """The caller engine's events, read from its websocket in a thread."""

    def __init__(self, engine: EngineProcess) -> None:
        self.url = engine.url.replace("http://", "ws://") + f"/v1/events?token={engine.token}"
        self.items: list[dict[str, Any]] = []
        self.ws: Any = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the caller engine's event socket did not open"

    def _read(self) -> None:
        with connect(self.url) as ws:
            self.ws = ws
            self.ready.set()
            while True:
                try:
                    raw = ws.recv()
                except Exception:  # closed at the end of the test
                    return
                self.items.append(json.loads(raw))

    def finished(self, call_id: str) -> dict[str, Any] | None:
        return next(
            (
                e["data"]
                for e in list(self.items)
                if e.get("type") == "flow.finished" and e.get("call_id") == call_id
            ),
            None,
        )

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.thread.join(5)


def test_numbers_decide_who_answers_and_answering_patients_press_their_keys(
    tmp_path: Path, simulator_factory: Any
) -> None:
    planned: list[tuple[str, Persona]] = []

    def planner(number: str, persona: Persona) -> CallPlan:
        planned.append((number, persona))
        return CallPlan(keys=["1", "38*9#", "2"], about="test")

    sim = simulator_factory(planner=planner)
    caller = EngineProcess(tmp_path / "caller", "http://127.0.0.1:9/unused")
    events = Events(caller)
    numbers = {behaviour: number_with(behaviour) for behaviour in (ANSWER, BUSY, NO_ANSWER)}
    numbers[WRONG_NUMBER] = number_with(WRONG_NUMBER)
    try:
        with httpx.Client(
            base_url=f"{caller.url}/v1", headers={"Authorization": f"Bearer {caller.token}"}
        ) as api:
            legs = {}
            for behaviour, number in numbers.items():
                response = api.post(
                    "/calls",
                    json={
                        "to": f"sip:{number}@{sim.simulator.sip_listen}",
                        "ring_timeout": 5,
                        "flow": GATHER_FLOW,
                        "variables": {},
                    },
                )
                assert response.status_code == 201, response.text
                legs[behaviour] = response.json()["call"]["call_id"]

            def ended(behaviour: str) -> dict[str, Any] | None:
                call = api.get(f"/calls/{legs[behaviour]}").json()["call"]
                return call if call["state"] == "ended" else None

            results = {
                behaviour: wait_until(lambda b=behaviour: ended(b), timeout=40, what=behaviour)
                for behaviour in numbers
            }
        assert results[ANSWER]["dial_result"] == "answered"
        assert results[BUSY]["dial_result"] == "busy" and results[BUSY]["sip_code"] == 486
        assert results[NO_ANSWER]["dial_result"] == "no_answer"
        assert results[WRONG_NUMBER]["dial_result"] == "unreachable"
        assert results[WRONG_NUMBER]["sip_code"] == 404
        finished = wait_until(lambda: events.finished(legs[ANSWER]), timeout=10, what="the flow")
        assert finished["outcome"] == "hangup"
        variables = finished["variables"]
        assert (variables["consent"], variables["temperature"], variables["medication"]) == (
            "1",
            "38*9",
            "2",
        )
        # Only the answering patient was looked up; the flow hung up, not the patient.
        assert [number for number, _persona in planned] == [numbers[ANSWER]]
        taken = wait_until(
            lambda: {c.number: c for c in sim.calls if c.ended} if len(sim.calls) == 4 else None,
            timeout=15,
            what="the simulator's call log",
        )
        by_number = {number: taken[number] for number in numbers.values()}
        assert by_number[numbers[ANSWER]].keys == list("138*9#2")
        assert by_number[numbers[ANSWER]].cause == "remote_hangup"
        assert by_number[numbers[NO_ANSWER]].cause == "cancelled"
        assert not by_number[numbers[NO_ANSWER]].answered
        assert {c.behaviour for c in by_number.values()} == set(numbers)
    finally:
        events.close()
        caller.stop()


def test_personas_are_deterministic_and_follow_the_rates() -> None:
    rates = Rates(answer=0.7, busy=0.1, no_answer=0.12, wrong_number=0.08, unwell=0.15)
    numbers = [f"138{n:08d}" for n in range(4000)]
    personas = [persona_for(number, rates) for number in numbers]
    assert personas == [persona_for(number, rates) for number in numbers]
    share = {b: sum(p.behaviour == b for p in personas) / len(personas) for b in (ANSWER, BUSY)}
    assert 0.66 < share[ANSWER] < 0.74 and 0.08 < share[BUSY] < 0.12
    unwell = [p for p in personas if p.unwell]
    assert unwell and all(p.behaviour == ANSWER for p in unwell)
    assert (
        persona_for(numbers[0], Rates(answer=1, busy=0, no_answer=0, wrong_number=0)).behaviour
        == ANSWER
    )


def _plain(value: Any) -> Any:
    """A persona's answer as cleaned answers store it (numbers as int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def test_keys_follow_flowgen_skip_logic_multiple_choice_and_numbers() -> None:
    from careloop.outreach import flowgen
    from careloop.surveys import schema
    from careloop.surveys.samples import PCI

    class Version:
        definition = PCI
        questionnaire_id = 1
        number = 1

    asked = {q["key"] for q in flowgen.asked_questions(PCI)}
    for unwell in (False, True):
        answers = persona_answers(PCI, unwell=unwell)
        keys = keys_for_answers(PCI, answers)
        # Feed the keys to the questions the flow asks, in order: the flow's answers come back.
        variables, remaining = {}, list(keys)
        for question in schema.visible_questions(PCI, answers):
            if question["key"] in asked and question["key"] in answers:
                variables[f"a_{question['key']}"] = remaining.pop(0).removesuffix("#")
        assert not remaining
        back, _unanswered = flowgen.answers_from_variables(Version(), variables)
        assert back == {k: _plain(v) for k, v in answers.items() if k in asked}
    unwell = persona_answers(PCI, unwell=True)
    assert unwell["chest_pain"] == "rest" and unwell["temperature"] == Decimal("38.9")
    healthy = persona_answers(PCI, unwell=False)
    assert healthy["chest_pain"] == "none" and healthy["temperature"] == Decimal("36.8")
    assert "0#" in keys_for_answers(PCI, healthy)  # "any bleeding?" — none
    assert "38*9#" in keys_for_answers(PCI, unwell)


@pytest.mark.django_db(transaction=True)
def test_automated_follow_ups_are_answered_by_simulated_patients_and_raise_alerts(
    hospital, engine_factory, simulator_factory, settings
) -> None:
    engine_factory()
    open_policy(windows=ALL_DAY, ring_timeout=4)
    sim = simulator_factory()
    settings.CC_PATIENT_DIAL = f"sip:{{number}}@{sim.simulator.sip_listen}"
    now = timezone.now()
    phones = {
        "well": number_with(ANSWER, unwell=False),
        "unwell": number_with(ANSWER, unwell=True),
        "busy": number_with(BUSY),
        "wrong": number_with(WRONG_NUMBER),
    }
    tasks = {
        name: make_ivr_task(
            hospital.cardio,
            definition=demo_automated.IVR_DISCHARGE,
            code=f"ivr_{name}",
            phone=phone,
            now=now,
        )
        for name, phone in phones.items()
    }
    assert automated.schedule_due_tasks() == 4
    assert dialler.dispatch() == 4

    def over(task: Task) -> ContactAttempt | None:
        return ContactAttempt.objects.filter(task=task, state=AttemptState.ENDED).first()

    ended = {
        name: wait_until(lambda t=task: over(t), timeout=60, what=f"the {name} call")
        for name, task in tasks.items()
    }
    assert ended["well"].result == ended["unwell"].result == "completed"
    assert ended["busy"].result == "busy"
    assert ended["wrong"].result == "unreachable"
    for name in ("well", "unwell"):
        wait_until(
            lambda n=name: Task.objects.get(pk=tasks[n].pk).status == states.DONE,
            timeout=15,
            what=f"the {name} step done",
        )
        record = FollowUpRecord.objects.get(task=tasks[name])
        assert record.outcome == Outcome.REACHED
        expected = persona_answers(demo_automated.IVR_DISCHARGE, unwell=name == "unwell")
        assert record.response.answers == {k: _plain(v) for k, v in expected.items()}
    assert not Alert.objects.filter(patient=tasks["well"].patient).exists()
    alerts = wait_until(
        lambda: list(Alert.objects.filter(patient=tasks["unwell"].patient)) or None,
        timeout=15,
        what="the unwell patient's alerts",
    )
    assert {a.question_key for a in alerts} == {"recovery", "temperature"}
    wait_until(
        lambda: Recording.objects.filter(call_id=ended["well"].call_id).exists(),
        timeout=20,
        what="the recording",
    )
    # The wrong number went to a nurse at once; the busy one waits for its retry.
    wait_until(
        lambda: Task.objects.get(pk=tasks["wrong"].pk).channel == "phone",
        timeout=15,
        what="the wrong number handed to a nurse",
    )
    by_number = {c.number: c for c in sim.calls}
    assert by_number[phones["well"]].keys[0] == "1" and "#" in by_number[phones["well"]].keys
    assert by_number[phones["unwell"]].unwell and by_number[phones["busy"]].behaviour == BUSY
    assert "ivr_unwell" in by_number[phones["unwell"]].about


def test_reminder_calls_are_confirmed_with_the_flows_received_key() -> None:
    from careloop.demo.simulator import confirm_key
    from careloop.outreach.models import Reminder
    from careloop.outreach.reminders import reminder_flow

    reminder = Reminder(
        kind="medication", text="请按时服用阿司匹林肠溶片，每次一百毫克，每日一次。"
    )
    reminder.due_at = timezone.now()
    assert confirm_key(reminder_flow(reminder, hospital="示范医院")) == "2"
    assert confirm_key({"nodes": {}}) == "1"
