"""Periodic jobs: registered with Huey, idempotent."""

from __future__ import annotations

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from careloop.followup import jobs
from careloop.followup.choices import TaskStatus
from careloop.followup.models import Enrollment, Task
from careloop.followup.tests.factories import days, make_discharge, make_plan

pytestmark = pytest.mark.django_db


def test_jobs_are_registered_as_periodic_tasks():
    names = {task.name for task in HUEY._registry.periodic_tasks}
    assert {"auto_enrol_job", "refresh_states_job"} <= names


def test_auto_enrol_job_is_idempotent(hospital):
    make_plan(hospital.cardio)
    make_discharge(hospital.cardio, discharged_on=timezone.localdate() - days(1))

    assert jobs.auto_enrol_job.call_local() == 1
    assert jobs.auto_enrol_job.call_local() == 0
    assert Enrollment.objects.count() == 1


def test_refresh_states_job_moves_due_tasks(hospital):
    make_plan(hospital.cardio)
    make_discharge(hospital.cardio, discharged_on=timezone.localdate() - days(3))
    jobs.auto_enrol_job.call_local()
    Task.objects.update(status=TaskStatus.PENDING)

    first = jobs.refresh_states_job.call_local()
    second = jobs.refresh_states_job.call_local()

    assert first["due"] == 1
    assert second == {"due": 0, "overdue": 0, "warned": 0}
