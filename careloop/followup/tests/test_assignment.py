"""Assignment (F2.3): even distribution, pool claims, reassignment."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from careloop.core import testing
from careloop.followup import services
from careloop.followup.choices import NotificationKind
from careloop.followup.models import Notification, Task
from careloop.followup.tests.factories import NOW, TODAY, days, make_discharge, make_plan, make_team

pytestmark = pytest.mark.django_db


def test_even_distribution_gives_each_enrolment_to_the_member_with_fewest_open_tasks(hospital):
    nurse_c = testing.make_user("cindy", departments=[hospital.cardio])
    team = make_team(hospital.cardio, members=[hospital.alice, nurse_c], supervisor=hospital.carol)
    plan = make_plan(hospital.cardio, team=team, assignment="even")
    # alice already carries one open task elsewhere: cindy gets the first enrolment.
    other = make_plan(hospital.cardio, name="其他", steps=[{"day_offset": 3, "title": "3天"}])
    services.enrol(other, testing.make_patient(), anchor_date=TODAY, now=NOW).tasks.update(
        assignee=hospital.alice
    )
    for n in range(4):
        make_discharge(hospital.cardio, discharged_on=TODAY - days(n))

    services.auto_enrol(now=NOW)

    per_enrolment = list(
        Task.objects.filter(plan=plan)
        .order_by("enrollment_id")
        .values_list("enrollment_id", "assignee__username")
        .distinct()
    )
    assert [name for _, name in per_enrolment] == ["cindy", "alice", "cindy", "alice"]
    counts = {
        name: Task.objects.filter(assignee__username=name, status__in=["pending", "due"]).count()
        for name in ("alice", "cindy")
    }
    assert counts == {"alice": 5, "cindy": 4}


def test_even_distribution_breaks_ties_by_lowest_user_id(hospital):
    team = make_team(hospital.cardio, members=[hospital.carol, hospital.alice])
    plan = make_plan(hospital.cardio, team=team, assignment="even")

    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)

    expected = min(hospital.alice.pk, hospital.carol.pk)
    assert set(enrollment.tasks.values_list("assignee_id", flat=True)) == {expected}


def test_pool_plan_leaves_tasks_unassigned(hospital):
    plan = make_plan(hospital.cardio, assignment="pool")

    enrollment = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW)

    assert not enrollment.tasks.filter(assignee__isnull=False).exists()


def test_claim_takes_a_pool_task_once(hospital):
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}])
    task = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW).tasks.get()
    carol_view = Task.objects.get(pk=task.pk)

    assert services.claim(task, acting_user=hospital.alice) is True
    assert services.claim(carol_view, acting_user=hospital.carol) is False
    task.refresh_from_db()
    assert task.assignee == hospital.alice


@pytest.mark.django_db(transaction=True)
def test_two_nurses_claiming_at_the_same_time_get_it_once(hospital):
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}])
    task = services.enrol(plan, testing.make_patient(), anchor_date=TODAY, now=NOW).tasks.get()
    nurses = [hospital.alice] + [
        testing.make_user(f"nurse{n}", departments=[hospital.cardio]) for n in range(5)
    ]
    barrier = threading.Barrier(len(nurses))
    results: dict[str, bool] = {}

    def attempt(nurse):
        try:
            barrier.wait()
            results[nurse.username] = services.claim(Task(pk=task.pk), acting_user=nurse)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(nurse,)) for nurse in nurses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [name for name, won in results.items() if won]
    assert len(winners) == 1
    task.refresh_from_db()
    assert task.assignee.username == winners[0]


def test_supervisor_reassigns_and_the_new_nurse_is_notified(hospital):
    nurse_c = testing.make_user("cindy", departments=[hospital.cardio])
    task = services.enrol(
        make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}]),
        testing.make_patient(),
        anchor_date=TODAY,
        now=NOW,
    ).tasks.get()

    services.assign(task, assignee=nurse_c, acting_user=hospital.carol)

    task.refresh_from_db()
    assert task.assignee == nurse_c
    assert Notification.objects.filter(
        user=nurse_c, task=task, kind=NotificationKind.ASSIGNED
    ).exists()


def test_a_task_cannot_be_given_to_a_nurse_of_another_department(hospital):
    task = services.enrol(
        make_plan(hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}]),
        testing.make_patient(),
        anchor_date=TODAY,
        now=NOW,
    ).tasks.get()

    with pytest.raises(services.FollowupError):
        services.assign(task, assignee=hospital.bob, acting_user=hospital.carol)
