"""Running a campaign: state changes, what it hands to the dialler, the results coming back
through the dialler's result handler, retries, and preview dialling by nurses."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from careloop.campaigns import services
from careloop.campaigns.choices import CampaignKind, CampaignState, TargetState
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.campaigns.tests.factories import make_campaign, make_target
from careloop.followup import states
from careloop.followup.models import FollowUpRecord
from careloop.followup.tests.factories import make_questionnaire, make_task
from careloop.outreach import dialler, policy
from careloop.outreach.choices import AttemptState
from careloop.outreach.models import ContactAttempt
from careloop.surveys.models import Response

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _contact_hours(open_all_day):
    return open_all_day


def _running(hospital, n=1, **overrides):
    campaign = make_campaign(hospital.cardio, **overrides)
    targets = [make_target(campaign) for _ in range(n)]
    services.start(campaign, acting_user=hospital.carol)
    return campaign, targets


def _end(attempt: ContactAttempt, result: str, variables=None) -> None:
    """What the dialler does when the engine reports the end of a call (handler after commit)."""
    with transaction.atomic():
        locked = ContactAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.state == AttemptState.SCHEDULED:
            policy.begin_contact(
                locked.patient, locked.channel, purpose=locked.purpose, attempt=locked
            )
        if variables is not None:
            locked.data = {**locked.data, "variables": variables}
            locked.save(update_fields=["data"])
        dialler.finish(locked, result=result)


def test_state_changes_follow_draft_running_paused_finished(
    hospital, django_capture_on_commit_callbacks
):
    campaign = make_campaign(hospital.cardio)
    with pytest.raises(services.CampaignError):
        services.start(campaign, acting_user=hospital.carol)  # nobody to call
    make_target(campaign)
    with pytest.raises(services.CampaignError):
        services.resume(campaign, acting_user=hospital.carol)
    with django_capture_on_commit_callbacks(execute=True):
        services.start(campaign, acting_user=hospital.carol)
    assert campaign.state == CampaignState.RUNNING and campaign.started_at
    target = campaign.targets.get()
    assert target.state == TargetState.IN_PROGRESS
    attempt = target.contact_attempt
    assert attempt.state == AttemptState.SCHEDULED and attempt.purpose == "campaign"
    assert attempt.data["campaign"] == campaign.pk and attempt.data["concurrency"] == 5
    assert attempt.data["campaign_target"] == target.pk
    assert "今天" in attempt.data["flow_variables"]["message"]

    services.pause(campaign, acting_user=hospital.carol)
    attempt.refresh_from_db()
    target.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED
    assert attempt.state == AttemptState.CANCELLED
    assert target.state == TargetState.PENDING and target.contact_attempt is None

    with django_capture_on_commit_callbacks(execute=True):
        services.resume(campaign, acting_user=hospital.carol)
    target.refresh_from_db()
    assert target.state == TargetState.IN_PROGRESS and target.contact_attempt != attempt

    with django_capture_on_commit_callbacks(execute=True):
        _end(target.contact_attempt, "completed")
    target.refresh_from_db()
    campaign.refresh_from_db()
    assert target.state == TargetState.DONE and target.last_result == "completed"
    assert campaign.state == CampaignState.FINISHED and campaign.finished_at
    with pytest.raises(services.CampaignError):
        services.cancel(campaign, acting_user=hospital.carol)


def test_cancel_skips_everyone_not_called_and_takes_back_scheduled_calls(hospital):
    campaign, _targets = _running(hospital, 3)
    services.pump(campaign.pk)
    scheduled = ContactAttempt.objects.filter(purpose="campaign")
    assert scheduled.count() == 3
    services.cancel(campaign, acting_user=hospital.carol)
    assert set(scheduled.values_list("state", flat=True)) == {AttemptState.CANCELLED}
    assert set(campaign.targets.values_list("state", "skip_reason")) == {
        (TargetState.SKIPPED, "cancelled")
    }


def test_pump_keeps_the_pace_and_the_calling_hours(hospital):
    campaign, _targets = _running(hospital, 5, calls_per_minute=2)
    now = timezone.now()
    assert services.pump(campaign.pk, now=now) == 2
    attempts = list(ContactAttempt.objects.order_by("not_before"))
    assert attempts[1].not_before - attempts[0].not_before == dt.timedelta(seconds=30)
    assert services.pump(campaign.pk, now=now) == 0  # a minute's worth is waiting already
    campaign.windows = [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "00:01"}]
    campaign.save()
    late = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(12, 0)))
    assert services.pump(campaign.pk, now=late + dt.timedelta(minutes=5)) == 0


def test_busy_is_retried_after_the_interval_then_fails(
    hospital, django_capture_on_commit_callbacks
):
    campaign, (target,) = _running(hospital, 1, max_attempts=2, retry_minutes=30)
    services.pump(campaign.pk)
    target.refresh_from_db()
    first = target.contact_attempt
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        _end(first, "busy")
    target.refresh_from_db()
    second = target.contact_attempt
    assert target.state == TargetState.IN_PROGRESS and target.attempts == 1
    assert second != first and second.attempt_no == 2
    assert second.not_before >= before + dt.timedelta(minutes=30)

    with django_capture_on_commit_callbacks(execute=True):
        _end(second, "busy")
    target.refresh_from_db()
    assert target.state == TargetState.FAILED and target.last_result == "busy"
    assert target.attempts == 2
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.FINISHED


def test_results_not_in_retry_on_fail_at_once(hospital, django_capture_on_commit_callbacks):
    campaign, (target,) = _running(hospital, 1, retry_on=["busy"], max_attempts=3)
    services.pump(campaign.pk)
    target.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        _end(target.contact_attempt, "no_answer")
    target.refresh_from_db()
    assert target.state == TargetState.FAILED and target.last_result == "no_answer"


def test_a_call_blocked_by_the_policy_skips_the_target(
    hospital, django_capture_on_commit_callbacks
):
    campaign, (target,) = _running(hospital, 1)
    services.pump(campaign.pk)
    target.patient.is_deceased = True
    target.patient.save()
    with django_capture_on_commit_callbacks(execute=True):
        dialler.dispatch()
    target.refresh_from_db()
    assert target.state == TargetState.SKIPPED and target.skip_reason == "deceased"


def test_questionnaire_answers_land_in_the_follow_up_task(
    hospital, django_capture_on_commit_callbacks
):
    questionnaire = make_questionnaire()
    version = questionnaire.current_version
    task = make_task(hospital.cardio)
    step = task.step
    step.questionnaire = questionnaire
    step.save()
    campaign = make_campaign(
        hospital.cardio, kind=CampaignKind.QUESTIONNAIRE, questionnaire=version, message=""
    )
    target = make_target(campaign, task.patient, task=task)
    other = make_target(campaign)  # no task: a plain response
    with django_capture_on_commit_callbacks(execute=True):
        services.start(campaign, acting_user=hospital.carol)
    target.refresh_from_db()
    other.refresh_from_db()
    flow = target.contact_attempt.data["flow"]
    assert flow["format"] == "careloop-flow/1" and "consent" in flow["nodes"]

    keys = {"consent": "1", "a_temperature": "385", "a_medication": "2"}
    with django_capture_on_commit_callbacks(execute=True):
        _end(target.contact_attempt, "completed", keys)
        _end(other.contact_attempt, "completed", keys)
    target.refresh_from_db()
    task.refresh_from_db()
    assert target.state == TargetState.DONE
    assert target.answers == {"temperature": 38.5, "medication": False}
    assert task.status == states.DONE
    record = FollowUpRecord.objects.get(task=task)
    assert record.response.answers["temperature"] == 38.5
    plain = Response.objects.exclude(pk=record.response_id).get()
    assert plain.patient == other.patient and plain.channel == "ivr"


def test_no_consent_is_not_reached(hospital, django_capture_on_commit_callbacks):
    campaign, (target,) = _running(hospital, 1, retry_on=[])
    services.pump(campaign.pk)
    target.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        _end(target.contact_attempt, "no_consent")
    target.refresh_from_db()
    assert target.state == TargetState.FAILED and target.last_result == "no_consent"


# --- preview dialling ----------------------------------------------------------------------------


def _preview(hospital, n=2, **overrides):
    campaign = make_campaign(hospital.cardio, kind=CampaignKind.PREVIEW, message="", **overrides)
    targets = [make_target(campaign) for _ in range(n)]
    services.start(campaign, acting_user=hospital.carol)
    return campaign, targets


def test_two_nurses_never_get_the_same_patient(hospital):
    campaign, targets = _preview(hospital)
    from careloop.core import testing

    other_nurse = testing.make_user("amy", departments=[hospital.cardio])
    mine = services.claim_next(campaign, acting_user=hospital.alice)
    theirs = services.claim_next(campaign, acting_user=other_nurse)
    assert {mine.pk, theirs.pk} == {t.pk for t in targets}
    assert services.claim_next(campaign, acting_user=hospital.alice).pk == mine.pk  # still hers
    # a stale read of the same row cannot claim it again
    stolen = CampaignTarget.objects.filter(
        pk=mine.pk, state=TargetState.PENDING, claimed_at=None
    ).update(claimed_by=other_nurse)
    assert stolen == 0


def test_preview_outcomes_retry_skip_and_reach(hospital, django_capture_on_commit_callbacks):
    campaign, (first, second) = _preview(hospital, max_attempts=2, retry_minutes=10)
    target = services.claim_next(campaign, acting_user=hospital.alice)
    assert target == first
    services.record_preview_outcome(target, outcome="busy", acting_user=hospital.alice)
    target.refresh_from_db()
    assert target.state == TargetState.PENDING and target.next_attempt_at > timezone.now()

    following = services.claim_next(campaign, acting_user=hospital.alice)
    assert following == second  # the busy one waits for its retry
    services.skip_target(following, acting_user=hospital.alice, reason="患者已转院")
    following.refresh_from_db()
    assert following.state == TargetState.SKIPPED and following.reason == "患者已转院"
    assert services.claim_next(campaign, acting_user=hospital.alice) is None

    later = timezone.now() + dt.timedelta(minutes=11)
    again = services.claim_next(campaign, acting_user=hospital.alice, now=later)
    assert again == first
    with django_capture_on_commit_callbacks(execute=True):
        services.record_preview_outcome(
            again, outcome="reached", acting_user=hospital.alice, now=later
        )
    again.refresh_from_db()
    campaign.refresh_from_db()
    assert again.state == TargetState.DONE and again.attempts == 2
    assert campaign.state == CampaignState.FINISHED


def test_preview_outcome_of_a_task_goes_through_the_follow_up(hospital, client):
    task = make_task(hospital.cardio)
    campaign = make_campaign(hospital.cardio, kind=CampaignKind.PREVIEW, message="")
    make_target(campaign, task.patient, task=task)
    services.start(campaign, acting_user=hospital.carol)
    client.force_login(hospital.alice)
    page = client.get(f"/campaigns/{campaign.pk}/preview/")
    assert page.status_code == 200
    html = page.content.decode()
    assert task.patient.phone not in html and task.patient.phone[-4:] in html
    response = client.post(f"/campaigns/{campaign.pk}/preview/", {"outcome": "no_answer"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.attempts == 1 and task.outcome == "no_answer"
    record = FollowUpRecord.objects.get(task=task)
    assert record.recorded_by == hospital.alice


def test_preview_skips_a_patient_who_opted_out_since_the_list_was_built(hospital):
    campaign, (first, second) = _preview(hospital)
    first.patient.call_opt_out = True
    first.patient.save()
    target = services.claim_next(campaign, acting_user=hospital.alice)
    assert target == second
    first.refresh_from_db()
    assert first.state == TargetState.SKIPPED and first.skip_reason == "opted_out"


def test_supervisor_runs_the_campaign_nurse_may_not(client, hospital):
    campaign = make_campaign(hospital.cardio)
    make_target(campaign)
    client.force_login(hospital.alice)
    assert client.post(f"/campaigns/{campaign.pk}/state/start/").status_code == 403
    client.force_login(hospital.carol)
    response = client.post(f"/campaigns/{campaign.pk}/state/start/")
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.RUNNING
    response = client.post(f"/campaigns/{campaign.pk}/state/start/", follow=True)
    assert "只有" in response.content.decode() or "Only" in response.content.decode()
    assert client.post(f"/campaigns/{campaign.pk}/state/explode/").status_code == 404


def test_creating_a_campaign_from_the_form(client, hospital):
    client.force_login(hospital.carol)
    response = client.post(
        "/campaigns/new/",
        {
            "name": "流感疫苗通知",
            "kind": "notification",
            "department": hospital.cardio.pk,
            "message": "{称呼}您好，{科室}提醒您接种流感疫苗。",
            "days": ["1", "2", "3", "4", "5"],
            "morning_from": "09:00",
            "morning_to": "11:30",
            "afternoon_from": "14:00",
            "afternoon_to": "17:00",
            "concurrency": 4,
            "calls_per_minute": 10,
            "max_attempts": 3,
            "retry_minutes": 60,
            "retry_on": ["busy", "no_answer"],
        },
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert response.url == f"/campaigns/{campaign.pk}/list/"
    assert campaign.windows[1] == {"days": [1, 2, 3, 4, 5], "from": "14:00", "to": "17:00"}
    assert campaign.retry_on == ["busy", "no_answer"] and campaign.created_by == hospital.carol

    refused = client.post(
        "/campaigns/new/",
        {"name": "x", "kind": "questionnaire", "department": hospital.cardio.pk},
    )
    assert refused.status_code == 200 and Campaign.objects.count() == 1


def test_detail_says_when_a_running_campaign_waits_for_its_calling_hours(client, hospital):
    campaign = make_campaign(
        hospital.cardio,
        state=CampaignState.RUNNING,
        windows=[{"days": [], "from": "09:00", "to": "11:00"}],
    )
    client.force_login(hospital.carol)
    html = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="waiting"' in html
    assert services.pump(campaign.pk) == 0
    campaign.state = CampaignState.PAUSED
    campaign.save()
    assert 'id="waiting"' not in client.get(f"/campaigns/{campaign.pk}/").content.decode()


def test_a_questionnaire_call_cancelled_because_the_step_was_finished_skips_the_target(hospital):
    version = make_questionnaire().current_version
    task = make_task(hospital.cardio)
    campaign = make_campaign(
        hospital.cardio, kind=CampaignKind.QUESTIONNAIRE, questionnaire=version, message=""
    )
    target = make_target(campaign, task.patient, task=task)
    services.start(campaign, acting_user=hospital.carol)
    services.pump(campaign.pk)
    target.refresh_from_db()
    assert target.contact_attempt.task == task
    from careloop.followup import services as followup

    followup.record_outcome(task, outcome="reached", acting_user=hospital.alice)
    target.contact_attempt.refresh_from_db()
    assert target.contact_attempt.state == AttemptState.CANCELLED
    services.pump(campaign.pk)
    target.refresh_from_db()
    assert target.state == TargetState.SKIPPED and target.skip_reason == "cancelled_elsewhere"


def test_a_notification_does_not_hang_on_the_follow_up_task(hospital):
    task = make_task(hospital.cardio)
    campaign = make_campaign(hospital.cardio)
    make_target(campaign, task.patient, task=task)
    services.start(campaign, acting_user=hospital.carol)
    services.pump(campaign.pk)
    attempt = ContactAttempt.objects.get(purpose="campaign")
    assert attempt.task is None


def test_a_campaign_outside_the_hospitals_contact_hours_is_refused(client, hospital, open_all_day):
    open_all_day.windows = [{"days": [1, 2, 3, 4, 5], "from": "08:30", "to": "12:00"}]
    open_all_day.save()
    client.force_login(hospital.carol)
    data = {
        "name": "夜间通知",
        "kind": "notification",
        "department": hospital.cardio.pk,
        "message": "您好",
        "days": ["6", "7"],
        "morning_from": "09:00",
        "morning_to": "11:00",
        "concurrency": 2,
        "calls_per_minute": 10,
        "max_attempts": 1,
        "retry_minutes": 30,
    }
    refused = client.post("/campaigns/new/", data)
    assert refused.status_code == 200 and not Campaign.objects.exists()
    data["days"] = ["1", "6"]
    assert client.post("/campaigns/new/", data).status_code == 302
