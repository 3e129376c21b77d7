"""Figures (F2.7) on a small known dataset: exact ratios."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from careloop.core import testing
from careloop.followup import queries, services
from careloop.followup.tests.factories import at, days, make_discharge, make_plan
from careloop.patients.choices import EncounterKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(hospital):
    """Discharges 20 days ago, one-step day-3 plans (window day 2 to day 6 = days -18..-14).

    cardio: E1 reached in the window; E2 no answer then reached late; E3 no answer then wrong
    number; E4 never called (overdue). ortho: E5 reached in the window by bob. Outside the period:
    a cardio stay discharged 40 days ago and followed up then. Not a discharge: an outpatient visit.
    """
    today = timezone.localdate()
    step = [{"day_offset": 3, "title": "3天", "window_before": 1, "window_after": 3}]
    cardio_plan = make_plan(hospital.cardio, steps=step)
    ortho_plan = make_plan(hospital.ortho, name="关节置换随访", steps=step)
    discharged = today - days(20)

    def task_of(plan, department, day=discharged):
        stay = make_discharge(department, discharged_on=day)
        enrollment = services.enrol(
            plan, stay.patient, anchor_date=day, encounter=stay, now=at(day, 12)
        )
        return enrollment.tasks.get()

    def outcome(task, what, day, user):
        services.record_outcome(task, outcome=what, acting_user=user, now=at(today - days(day)))

    alice, bob = hospital.alice, hospital.bob
    e1, e2, e3, e4 = (task_of(cardio_plan, hospital.cardio) for _ in range(4))
    outcome(e1, "reached", 17, alice)
    outcome(e2, "no_answer", 16, alice)
    outcome(e2, "reached", 12, alice)
    outcome(e3, "no_answer", 17, alice)
    outcome(e3, "wrong_number", 16, alice)
    e5 = task_of(ortho_plan, hospital.ortho)
    outcome(e5, "reached", 17, bob)
    old = task_of(cardio_plan, hospital.cardio, today - days(40))
    outcome(old, "reached", 37, alice)
    testing.make_encounter(
        testing.make_patient(),
        hospital.cardio,
        kind=EncounterKind.OUTPATIENT,
        started_at=at(today - days(5)),
        discharged_at=None,
    )
    return {"today": today, "tasks": (e1, e2, e3, e4, e5), "plan": cardio_plan}


def period(today, **filters):
    start, end = queries.default_period(today)
    return queries.FigureFilter(date_from=start, date_to=end, **filters)


def test_hospital_wide_figures_follow_the_definitions(hospital, dataset):
    today = dataset["today"]

    row = queries.figures_summary(hospital.erin, period(today), today)

    assert (row.discharged, row.followed) == (5, 3)
    assert row.followup_ratio == Decimal("60.0")
    assert (row.tasks, row.done, row.on_time, row.overdue, row.failed) == (5, 3, 2, 1, 1)
    assert row.on_time_rate == Decimal("66.7")
    assert (row.attempts, row.reached) == (6, 3)
    assert row.reach_rate == Decimal("50.0")


def test_a_nurse_sees_the_figures_of_her_department_only(hospital, dataset):
    today = dataset["today"]

    row = queries.figures_summary(hospital.alice, period(today), today)

    assert (row.discharged, row.followed, row.followup_ratio) == (4, 2, Decimal("50.0"))
    assert (row.done, row.on_time, row.on_time_rate) == (2, 1, Decimal("50.0"))
    assert (row.attempts, row.reached, row.reach_rate) == (5, 2, Decimal("40.0"))


def test_status_counts_of_the_period(hospital, dataset):
    today = dataset["today"]

    counts = queries.figure_status_counts(hospital.erin, period(today), today)

    assert counts == {
        "pending": 0,
        "due": 0,
        "overdue": 1,
        "done": 3,
        "unreached": 1,
        "lost": 0,
        "cancelled": 0,
    }


def test_breakdown_per_nurse(hospital, dataset):
    today = dataset["today"]

    rows = {
        row.label: row for row in queries.breakdown(hospital.erin, period(today), today, "nurse")
    }

    alice, bob, nobody = rows["李爱丽"], rows["王博"], rows[""]
    assert (alice.tasks, alice.done, alice.on_time, alice.failed) == (3, 2, 1, 1)
    assert (alice.attempts, alice.reached) == (5, 2)
    assert (bob.tasks, bob.done, bob.attempts, bob.reach_rate) == (1, 1, 1, Decimal("100.0"))
    assert (nobody.tasks, nobody.overdue, nobody.attempts) == (1, 1, 0)
    assert alice.discharged is None  # a discharge has no nurse: no ratio per nurse


def test_breakdown_per_department_has_the_follow_up_ratio(hospital, dataset):
    today = dataset["today"]

    rows = {
        row.label: row
        for row in queries.breakdown(hospital.erin, period(today), today, "department")
    }

    assert set(rows) == {"心内科", "骨科"}
    assert (rows["心内科"].discharged, rows["心内科"].followed) == (4, 2)
    assert rows["骨科"].followup_ratio == Decimal("100.0")


def test_breakdown_per_plan_and_month_add_up_to_the_period(hospital, dataset):
    today = dataset["today"]
    selection = period(today)
    total = queries.figures_summary(hospital.erin, selection, today)

    for by in ("plan", "month"):
        rows = queries.breakdown(hospital.erin, selection, today, by)
        assert sum(r.tasks for r in rows) == total.tasks
        assert sum(r.attempts for r in rows) == total.attempts
        assert sum(r.done for r in rows) == total.done
    months = queries.breakdown(hospital.erin, selection, today, "month")
    assert sum(r.discharged or 0 for r in months) == 5
    assert all(len(r.label) == 7 for r in months)  # YYYY-MM


def test_plan_filter_narrows_the_followed_up_stays(hospital, dataset):
    today = dataset["today"]

    row = queries.figures_summary(hospital.erin, period(today, plan=dataset["plan"]), today)

    assert (row.discharged, row.followed) == (5, 2)
    assert (row.tasks, row.attempts) == (4, 5)


def test_figures_run_a_fixed_number_of_queries(hospital, dataset, django_assert_max_num_queries):
    today = dataset["today"]
    with django_assert_max_num_queries(3):
        queries.figures_summary(hospital.erin, period(today), today)
    with django_assert_max_num_queries(4):
        queries.breakdown(hospital.erin, period(today), today, "nurse")


def test_figures_page_shows_the_ratios_and_exports_them(client, hospital, dataset):
    client.force_login(hospital.erin)

    page = client.get("/followup/figures/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="followup-ratio">60.0%<' in html
    assert 'id="reach-rate">50.0%<' in html
    assert 'id="on-time-rate">66.7%<' in html
    assert page.context["chart"]["discharged"] and sum(page.context["chart"]["discharged"]) == 5

    export = client.get("/followup/figures/export/")
    sheet = load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][2:5] == (5, 3, 60.0)
    assert len(rows) > 2  # the breakdowns follow the whole period


def test_figures_filter_by_department_for_a_leader(client, hospital, dataset):
    client.force_login(hospital.erin)

    page = client.get("/followup/figures/", {"department": hospital.ortho.pk})

    summary = page.context["summary"]
    assert (summary.discharged, summary.followed, summary.tasks) == (1, 1, 1)
