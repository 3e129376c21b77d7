"""The task state model over time (F2.3), with a fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.core import testing
from careloop.followup import queries, services, states
from careloop.followup.choices import NotificationKind, TaskStatus
from careloop.followup.models import Notification, Task
from careloop.followup.tests.factories import (
    NOW,
    TODAY,
    at,
    days,
    make_discharge,
    make_plan,
    make_team,
)

pytestmark = pytest.mark.django_db


def test_transitions_are_data_and_final_states_are_terminal():
    assert states.can_transition(states.PENDING, states.DUE)
    assert states.can_transition(states.DUE, states.OVERDUE)
    assert states.can_transition(states.OVERDUE, states.DONE)
    assert not states.can_transition(states.OVERDUE, states.DUE)
    assert not states.can_transition(states.DUE, states.PENDING)
    for final in states.FINAL:
        assert states.TRANSITIONS[final] == frozenset()
    with pytest.raises(states.InvalidTransition):
        states.check_transition(states.DONE, states.CANCELLED)


def test_time_state_boundaries_are_inclusive_of_window_start_and_deadline():
    start, deadline = dt.date(2026, 3, 9), dt.date(2026, 3, 13)
    assert (
        states.time_state(window_start=start, deadline=deadline, today=start - days(1)) == "pending"
    )
    assert states.time_state(window_start=start, deadline=deadline, today=start) == "due"
    assert states.time_state(window_start=start, deadline=deadline, today=deadline) == "due"
    assert (
        states.time_state(window_start=start, deadline=deadline, today=deadline + days(1))
        == "overdue"
    )


def test_sql_expression_and_python_function_agree_on_every_day(hospital):
    plan = make_plan(hospital.cardio)
    services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)
    tasks = list(Task.objects.filter(plan=plan))
    for offset in range(-2, 40):
        today = TODAY + days(offset)
        annotated = dict(
            queries.with_current_status(Task.objects.filter(plan=plan), today).values_list(
                "pk", "current_status"
            )
        )
        for task in tasks:
            expected = states.current_status(
                task.status, window_start=task.window_start, deadline=task.deadline, today=today
            )
            assert annotated[task.pk] == expected
            assert Task.objects.filter(states.status_filter({expected}, today), pk=task.pk).exists()


def test_refresh_states_moves_tasks_pending_to_due_to_overdue(hospital):
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}])  # window 2..6
    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)
    task = enrollment.tasks.get()
    assert task.status == TaskStatus.PENDING

    assert services.refresh_states(now=at(TODAY + days(1)))["due"] == 0
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING

    assert services.refresh_states(now=at(TODAY + days(2), 0))["due"] == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.DUE

    services.refresh_states(now=at(TODAY + days(6), 23))
    task.refresh_from_db()
    assert task.status == TaskStatus.DUE

    assert services.refresh_states(now=at(TODAY + days(7), 0))["overdue"] == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.OVERDUE


def test_refresh_states_never_touches_finished_tasks(hospital):
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}])
    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY - days(3), now=NOW)
    task = enrollment.tasks.get()
    services.record_outcome(task, outcome="reached", acting_user=hospital.alice, now=NOW)

    services.refresh_states(now=at(TODAY + days(30)))

    task.refresh_from_db()
    assert task.status == TaskStatus.DONE


def test_overdue_task_warns_assignee_and_team_supervisor_once(hospital):
    team = make_team(hospital.cardio, members=[hospital.alice], supervisor=hospital.carol)
    plan = make_plan(
        hospital.cardio, team=team, assignment="even", steps=[{"day_offset": 3, "title": "3天"}]
    )
    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)
    task = enrollment.tasks.get()
    assert task.assignee == hospital.alice
    later = at(TODAY + days(7))

    first = services.refresh_states(now=later)
    second = services.refresh_states(now=later + dt.timedelta(minutes=1))

    assert first["warned"] == 1
    assert second["warned"] == 0
    notices = Notification.objects.filter(task=task, kind=NotificationKind.OVERDUE)
    assert sorted(notices.values_list("user__username", flat=True)) == ["alice", "carol"]
    task.refresh_from_db()
    assert task.overdue_notified_at == later
    assert str(task.pk) in notices.first().text


def test_overdue_pool_task_without_team_warns_the_departments_supervisors(hospital):
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}])
    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)

    services.refresh_states(now=at(TODAY + days(7)))

    assert list(
        Notification.objects.filter(task=enrollment.tasks.get()).values_list(
            "user__username", flat=True
        )
    ) == ["carol"]


def test_counts_by_status_use_the_calendar_even_before_refresh(hospital):
    plan = make_plan(hospital.cardio)  # day 3 (window 2..6) and day 30 (window 29..33)
    for n in (0, 10, 20):
        stay = make_discharge(hospital.cardio, discharged_on=TODAY - days(n))
        services.enrol(plan, stay.patient, anchor_date=TODAY - days(n), encounter=stay, now=NOW)
    later = TODAY + days(5)

    counts = queries.counts_by_status(Task.objects.filter(plan=plan), later)

    # Anchor 0: day 3 due on day 5, day 30 pending. Anchors -10 and -20: day 3 had closed at
    # enrolment (cancelled), day 30 windows open on days 19 and 9 (pending).
    assert counts == {
        "pending": 3,
        "due": 1,
        "overdue": 0,
        "done": 0,
        "unreached": 0,
        "lost": 0,
        "cancelled": 2,
    }
    # The stored status still says pending: only refresh_states writes it.
    assert not Task.objects.filter(plan=plan, status=TaskStatus.DUE).exists()
