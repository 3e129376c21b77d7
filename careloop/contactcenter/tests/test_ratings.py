"""Post-call satisfaction (F3.3): the engine events that put the patient through to the rating,
the rating saved from ``flow.finished``, and the report (numbers, department scope, export)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from careloop.audit.models import AuditAction, AuditEvent
from careloop.contactcenter import queries, services
from careloop.contactcenter.choices import CallState, Direction, RatingStatus
from careloop.contactcenter.models import Call
from careloop.contactcenter.tests.factories import make_call, make_patient_in, make_recording
from careloop.core import testing
from careloop.engine.flow import load_flow
from careloop.followup.choices import Outcome
from careloop.followup.models import FollowUpRecord
from careloop.followup.tests.factories import make_task

AGENT, PATIENT = "a" * 16, "b" * 16


class FakeEngine:
    """Records the commands the application sends (the real engine: tests/telephony/)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Any]] = []

    def bridge(self, call_ids, *, record=True, hangup_on_exit=True):
        self.commands.append(("bridge", (tuple(call_ids), record, hangup_on_exit)))
        return {"bridge_id": "c" * 16}

    def run_flow(self, call_id, flow, *, variables=None):
        self.commands.append(("run_flow", (call_id, flow["id"], variables)))

    def hangup(self, call_id, *, cause="normal"):
        self.commands.append(("hangup", call_id))

    def originate(self, to, **kwargs):
        self.commands.append(("originate", to))
        return {"call_id": PATIENT}


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(services, "client", lambda: fake)
    return fake


def _event(seq: int, kind: str, leg: str, **data: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "seq": seq,
        "ts": f"2026-11-22T02:50:{seq:02d}.000Z",
        "type": kind,
        "call_id": leg,
        "data": data,
    }


def _talking_call(hospital, **overrides: Any) -> Call:
    fields: dict[str, Any] = {
        "state": CallState.RINGING_PATIENT,
        "agent_leg_id": AGENT,
        "patient_leg_id": PATIENT,
    }
    fields.update(overrides)
    call = make_call(hospital.alice, make_patient_in(hospital.cardio), **fields)
    services.handle_events([_event(1, "call.answered", PATIENT, codec="PCMA")])
    call.refresh_from_db()
    return call


def test_the_bridge_leaves_the_patient_up_when_the_nurse_leaves(hospital, engine):
    call = _talking_call(hospital)
    assert call.state == CallState.TALKING and call.bridge_id == "c" * 16
    assert engine.commands == [("bridge", ((AGENT, PATIENT), True, False))]


def test_nurse_hanging_up_puts_the_patient_through_and_the_rating_is_saved(hospital, engine):
    call = _talking_call(hospital)
    engine.commands.clear()
    services.handle_events([_event(2, "call.ended", AGENT, cause="remote_hangup")])
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.rating_status == RatingStatus.OFFERED
    assert engine.commands == [
        ("run_flow", (PATIENT, services.RATING_FLOW_ID, {"cc_call": call.pk}))
    ]

    finished = _event(
        5,
        "flow.finished",
        PATIENT,
        flow_id=services.RATING_FLOW_ID,
        flow_version=1,
        outcome="hangup",
        node="thanks",
        variables={"rating": "4", "caller": "sip:careloop@x", "callee": "sip:13800138000@x"},
    )
    services.handle_events(
        [
            _event(3, "flow.step", PATIENT, flow_id=services.RATING_FLOW_ID, node="ask"),
            _event(4, "call.ended", PATIENT, cause="normal", hangup_by="local"),
            finished,
        ]
    )
    call.refresh_from_db()
    assert (call.rating, call.rating_status) == (4, RatingStatus.RATED)
    assert call.rated_at == dt.datetime(2026, 11, 22, 2, 50, 5, tzinfo=dt.UTC)
    # the conversation ended when the nurse left; the rating does not move it
    assert call.ended_at == dt.datetime(2026, 11, 22, 2, 50, 2, tzinfo=dt.UTC)
    assert call.cause == "remote_hangup"
    assert "13800138000" not in str(list(call.events.values_list("data", flat=True)))
    assert engine.commands == [
        ("run_flow", (PATIENT, services.RATING_FLOW_ID, {"cc_call": call.pk}))
    ]


def test_no_valid_key_leaves_the_call_unrated(hospital, engine):
    call = _talking_call(hospital)
    services.handle_events([_event(2, "call.ended", AGENT, cause="remote_hangup")])
    services.handle_events(
        [
            _event(
                3,
                "flow.finished",
                PATIENT,
                flow_id=services.RATING_FLOW_ID,
                outcome="hangup",
                variables={"rating": ""},
            )
        ]
    )
    call.refresh_from_db()
    assert call.rating is None and call.rating_status == RatingStatus.UNRATED


def test_with_the_setting_off_the_nurse_hanging_up_hangs_up_the_patient(hospital, engine, settings):
    settings.CC_RATING_AFTER_CALL = False
    call = _talking_call(hospital)
    engine.commands.clear()
    services.handle_events([_event(2, "call.ended", AGENT, cause="remote_hangup")])
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.rating_status == RatingStatus.NONE
    assert engine.commands == [("hangup", PATIENT)]


def test_the_button_asks_for_the_rating_even_with_the_setting_off(hospital, engine, settings):
    settings.CC_RATING_AFTER_CALL = False
    call = _talking_call(hospital)
    engine.commands.clear()
    assert services.hang_up_for_rating(call, acting_user=hospital.alice)
    assert engine.commands == [("hangup", AGENT)]  # only the nurse's side
    services.handle_events([_event(2, "call.ended", AGENT, cause="normal", hangup_by="local")])
    call.refresh_from_db()
    assert call.rating_status == RatingStatus.OFFERED
    assert engine.commands[-1][0] == "run_flow"


def test_a_plain_hang_up_hangs_up_both_and_offers_no_rating(hospital, engine):
    call = _talking_call(hospital)
    engine.commands.clear()
    services.hang_up(call, acting_user=hospital.alice)
    assert engine.commands == [("hangup", AGENT), ("hangup", PATIENT)]
    services.handle_events([_event(2, "call.ended", AGENT, cause="normal", hangup_by="local")])
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.rating_status == RatingStatus.SKIPPED
    assert [c for c in engine.commands if c[0] == "run_flow"] == []


def test_hanging_up_an_ended_call_does_not_mark_it(hospital, engine):
    call = make_call(hospital.alice, make_patient_in(hospital.cardio), agent_leg_id=AGENT)
    services.hang_up(call, acting_user=hospital.alice)
    call.refresh_from_db()
    assert call.rating_status == RatingStatus.NONE


def test_the_timeline_shows_the_rating(hospital):
    patient = make_patient_in(hospital.cardio)
    now = timezone.now()
    make_call(
        hospital.alice,
        patient,
        answered_at=now - dt.timedelta(minutes=3),
        ended_at=now,
        rating=5,
        rating_status=RatingStatus.RATED,
    )
    [entry] = queries.timeline_entries(patient)
    assert "5/5" in entry.detail


def test_patient_hanging_up_first_hangs_up_the_nurse(hospital, engine):
    call = _talking_call(hospital)
    engine.commands.clear()
    services.handle_events([_event(2, "call.ended", PATIENT, cause="remote_hangup")])
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.rating_status == RatingStatus.NONE
    assert engine.commands == [("hangup", AGENT)]


def test_a_patient_who_never_answered_is_not_rated(hospital, engine):
    call = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        state=CallState.RINGING_PATIENT,
        agent_leg_id=AGENT,
        patient_leg_id=PATIENT,
    )
    services.handle_events([_event(2, "call.ended", AGENT, cause="remote_hangup")])
    call.refresh_from_db()
    assert call.rating_status == RatingStatus.NONE
    assert engine.commands == [("hangup", PATIENT)]


def test_the_button_on_a_call_not_in_conversation_just_hangs_up(hospital, engine):
    call = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        state=CallState.RINGING_PATIENT,
        agent_leg_id=AGENT,
        patient_leg_id=PATIENT,
    )
    assert not services.hang_up_for_rating(call, acting_user=hospital.alice)
    assert engine.commands == [("hangup", AGENT), ("hangup", PATIENT)]


def test_inbound_call_backs_are_rated_too(hospital, engine):
    call = _talking_call(hospital, direction=Direction.INBOUND, state=CallState.DIALING_AGENT)
    call.bridge_id = "d" * 16
    call.save()
    services.handle_events([_event(2, "call.ended", AGENT, cause="remote_hangup")])
    call.refresh_from_db()
    assert call.rating_status == RatingStatus.OFFERED


def test_the_rating_flow_is_a_valid_engine_flow():
    flow = load_flow(services.rating_flow())
    menu = flow.nodes["ask"]
    assert menu["type"] == "menu" and sorted(menu["options"]) == ["1", "2", "3", "4", "5"]
    assert menu["max_attempts"] == 2  # one retry
    assert "非常满意请按5" in menu["say"]


def test_a_rating_whose_events_were_lost_is_closed(hospital, monkeypatch):
    from careloop.contactcenter.engine_client import EngineError

    class Down:
        def get_call(self, call_id):
            raise EngineError("unreachable", "down")

    monkeypatch.setattr(services, "client", lambda: Down())
    old = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        rating_status=RatingStatus.OFFERED,
        ended_at=timezone.now() - dt.timedelta(minutes=11),
    )
    recent = make_call(
        hospital.alice,
        make_patient_in(hospital.cardio),
        rating_status=RatingStatus.OFFERED,
        ended_at=timezone.now() - dt.timedelta(minutes=1),
    )
    services.reconcile_calls()
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.rating_status == RatingStatus.UNRATED
    assert recent.rating_status == RatingStatus.OFFERED


def test_an_outcome_recorded_after_the_call_gets_its_recording(hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)
    earlier = make_call(
        hospital.alice, task.patient, task=task, created_at=timezone.now() - dt.timedelta(days=2)
    )
    earlier_recording = make_recording(earlier)
    first = FollowUpRecord.objects.create(
        task=task,
        outcome=Outcome.NO_ANSWER,
        recorded_by=hospital.alice,
        recorded_at=timezone.now() - dt.timedelta(days=1),
    )
    call = make_call(hospital.alice, task.patient, task=task)
    recording = make_recording(call)
    record = FollowUpRecord.objects.create(
        task=task, outcome=Outcome.REACHED, recorded_by=hospital.alice
    )
    recording.refresh_from_db()
    earlier_recording.refresh_from_db()
    assert recording.followup_record == record
    assert earlier_recording.followup_record == first


# --- the report -----------------------------------------------------------------------------------


def _at(day: dt.date, hour: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


DAY = dt.date(2026, 3, 10)


@pytest.fixture
def rated(hospital) -> dict[str, Call]:
    """Cardio: alice's calls rated 5, 4, 4, one not rated, one not put through, one unanswered;
    ortho: bob's call rated 1; and calls outside the period."""
    cardio = make_patient_in(hospital.cardio)
    ortho = make_patient_in(hospital.ortho)

    def call(nurse, patient, rating=None, status="", answered=True, when=None):
        when = when or _at(DAY, 10)
        return make_call(
            nurse,
            patient,
            created_at=when,
            agent_answered_at=when + dt.timedelta(seconds=5),
            answered_at=when + dt.timedelta(seconds=20) if answered else None,
            ended_at=when + dt.timedelta(minutes=3),
            rating=rating,
            rating_status=status or (RatingStatus.RATED if rating else ""),
            rated_at=when + dt.timedelta(minutes=4) if rating else None,
        )

    return {
        "c5": call(hospital.alice, cardio, 5),
        "c4": call(hospital.alice, cardio, 4),
        "c4b": call(hospital.carol, cardio, 4),
        "unrated": call(hospital.alice, cardio, status=RatingStatus.UNRATED),
        "skipped": call(hospital.alice, cardio, status=RatingStatus.SKIPPED),
        "unanswered": call(hospital.alice, cardio, answered=False),
        "o1": call(hospital.bob, ortho, 1),
        "automated": make_call(None, cardio, created_at=_at(DAY, 11), answered_at=_at(DAY, 11)),
        # 2026-03-09 23:30 in Shanghai is 15:30 UTC: the day before the period
        "before": call(hospital.alice, cardio, 2, when=_at(DAY - dt.timedelta(days=1), 23)),
        "after": call(hospital.alice, cardio, 3, when=_at(DAY + dt.timedelta(days=1), 0)),
    }


def _report(user, **kwargs):
    calls = queries.rated_calls(user, date_from=DAY, date_to=DAY, **kwargs)
    return queries.rating_report(calls)


def test_report_numbers_for_a_supervisor_are_her_departments_only(hospital, rated):
    report = _report(hospital.carol)
    total = report.total
    assert (total.conversations, total.put_through, total.rated) == (5, 4, 3)
    assert total.average == pytest.approx(4.33, abs=0.01)
    assert total.distribution == (0, 0, 0, 2, 1)
    assert total.share_rated == pytest.approx(0.75)
    assert [(r.label, r.rated, r.average) for r in report.departments] == [("心内科", 3, 4.33)]
    nurses = {r.label: (r.conversations, r.rated, r.average) for r in report.nurses}
    assert nurses == {"李爱丽": (4, 2, 4.5), "陈卡罗": (1, 1, 4.0)}


def test_report_for_the_leader_covers_every_department(hospital, rated):
    report = _report(hospital.erin)
    assert report.total.rated == 4 and report.total.distribution == (1, 0, 0, 2, 1)
    assert [r.label for r in report.departments] == ["心内科", "骨科"]
    only_ortho = _report(hospital.erin, department=hospital.ortho)
    assert only_ortho.total.rated == 1 and only_ortho.total.average == 1.0


def test_report_periods_are_hospital_dates(hospital, rated):
    calls = queries.rated_calls(
        hospital.erin, date_from=DAY - dt.timedelta(days=1), date_to=DAY - dt.timedelta(days=1)
    )
    assert list(calls) == [rated["before"]]
    week = queries.rated_calls(
        hospital.erin, date_from=DAY - dt.timedelta(days=1), date_to=DAY + dt.timedelta(days=1)
    )
    assert queries.rating_report(week).total.rated == 6


def test_a_task_call_counts_for_the_tasks_department(hospital):
    task = make_task(hospital.ortho)
    patient = task.patient
    testing.make_encounter(patient, hospital.cardio)  # a later stay elsewhere
    call = make_call(hospital.bob, patient, task=task, rating=3, rating_status="rated")
    ids = list(
        Call.objects.annotate(d=queries.call_department())
        .filter(pk=call.pk)
        .values_list("d", flat=True)
    )
    assert ids == [hospital.ortho.pk]


def test_ratings_page_and_export(client, hospital, rated):
    client.force_login(hospital.carol)
    page = client.get("/cc/ratings/", {"date_from": DAY.isoformat(), "date_to": DAY.isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="rating-average">4.33<' in html and 'id="rating-share">75.0%<' in html
    assert "骨科" not in html.split('id="ratings-department"')[1]

    export = client.get(
        "/cc/ratings/export/", {"date_from": DAY.isoformat(), "date_to": DAY.isoformat()}
    )
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:7] == ("分组", "科室/护士", "通话", "转入评价", "已评价", "评价率", "平均分")
    assert rows[1][2:] == (5, 4, 3, 0.75, 4.33, 0, 0, 0, 2, 1)
    assert [r[1] for r in rows[2:]] == ["心内科", "李爱丽", "陈卡罗"]
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, user=hospital.carol).exists()


def test_ratings_page_refuses_nurses_and_doctors_and_other_departments(client, hospital):
    for user in (hospital.alice, hospital.dave, hospital.henry):
        client.force_login(user)
        assert client.get("/cc/ratings/").status_code == 403
        assert client.get("/cc/ratings/export/").status_code == 403
    client.force_login(hospital.carol)
    assert client.get("/cc/ratings/", {"department": hospital.ortho.pk}).status_code == 404
    client.force_login(hospital.frank)
    assert client.get("/cc/ratings/", {"department": hospital.ortho.pk}).status_code == 200


def test_the_nav_links_the_report_for_supervisors_only(client, hospital):
    client.force_login(hospital.carol)
    assert 'href="/cc/ratings/"' in client.get("/").content.decode()
    client.force_login(hospital.alice)
    assert 'href="/cc/ratings/"' not in client.get("/").content.decode()
