"""Building a campaign's list from follow-up tasks or patients: one row per patient, and the
patients who must not be called kept as skipped with the reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from careloop.campaigns import queries, services
from careloop.campaigns.choices import CampaignState, TargetState
from careloop.campaigns.models import CampaignTarget
from careloop.campaigns.tests.factories import make_campaign, make_patient_in
from careloop.followup.tests.factories import make_plan, make_task
from careloop.outreach.choices import BlockKind, BlockSource
from careloop.outreach.policy import add_block

pytestmark = pytest.mark.django_db


def test_a_patient_with_two_matching_tasks_is_called_once(hospital):
    campaign = make_campaign(hospital.cardio)
    first = make_task(hospital.cardio)
    # a second enrolment of the same patient in another plan
    other_plan = make_plan(hospital.cardio, name="另一方案", steps=[{"day_offset": 3}])
    from careloop.followup import services as followup

    encounter = first.patient.encounters.first()
    second = followup.enrol(
        other_plan,
        first.patient,
        anchor_date=timezone.localdate(encounter.discharged_at),
        encounter=encounter,
    ).tasks.get()
    result = services.add_tasks(campaign, [first, second], acting_user=hospital.carol)
    assert (result.added, result.skipped, result.duplicates) == (1, 0, 1)
    target = CampaignTarget.objects.get(campaign=campaign)
    assert target.patient == first.patient and target.task == first

    again = services.add_patients(campaign, [first.patient], acting_user=hospital.carol)
    assert (again.added, again.duplicates) == (0, 1)
    assert CampaignTarget.objects.filter(campaign=campaign).count() == 1


def test_patients_the_policy_forbids_are_added_as_skipped_with_the_reason(hospital):
    campaign = make_campaign(hospital.cardio)
    fine = make_patient_in(hospital.cardio)
    deceased = make_patient_in(hospital.cardio, is_deceased=True)
    flagged = make_patient_in(hospital.cardio, do_not_contact=True)
    opted_out = make_patient_in(hospital.cardio, call_opt_out=True)
    withdrawn = make_patient_in(hospital.cardio)
    add_block(withdrawn, BlockKind.CONSENT_WITHDRAWN, source=BlockSource.STAFF)
    no_phone = make_patient_in(hospital.cardio, phone="")

    result = services.add_patients(
        campaign,
        [fine, deceased, flagged, opted_out, withdrawn, no_phone],
        acting_user=hospital.carol,
    )

    assert (result.added, result.skipped, result.duplicates) == (1, 5, 0)
    rows = dict(
        CampaignTarget.objects.filter(campaign=campaign).values_list("patient_id", "skip_reason")
    )
    assert rows == {
        fine.pk: "",
        deceased.pk: "deceased",
        flagged.pk: "do_not_contact",
        opted_out.pk: "opted_out",
        withdrawn.pk: "consent_withdrawn",
        no_phone.pk: "no_phone",
    }
    skipped = CampaignTarget.objects.get(campaign=campaign, patient=deceased)
    assert skipped.state == TargetState.SKIPPED and skipped.reason and skipped.finished_at
    progress = queries.progress(campaign)
    assert (progress.pending, progress.skipped, progress.total) == (1, 5, 6)
    assert progress.skipped_by_reason["deceased"] == 1


def test_the_list_is_closed_once_the_campaign_runs(hospital):
    campaign = make_campaign(hospital.cardio, state=CampaignState.RUNNING)
    with pytest.raises(services.CampaignError):
        services.add_patients(
            campaign, [make_patient_in(hospital.cardio)], acting_user=hospital.carol
        )


def test_list_form_previews_the_count_and_adds_visible_patients_only(client, hospital):
    campaign = make_campaign(hospital.cardio)
    mine = make_patient_in(hospital.cardio, name="王小明", name_initials="wxm")
    make_patient_in(hospital.ortho, name="王小红", name_initials="wxh")  # not carol's department
    client.force_login(hospital.carol)

    preview = client.get(
        f"/campaigns/{campaign.pk}/list/",
        {"source": "patients", "p-q": "王小"},
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code == 200
    assert 'data-count="1"' in preview.content.decode()

    response = client.post(f"/campaigns/{campaign.pk}/list/", {"source": "patients", "p-q": "王小"})
    assert response.status_code == 302
    assert list(campaign.targets.values_list("patient_id", flat=True)) == [mine.pk]
    campaign.refresh_from_db()
    assert campaign.source == "patients" and campaign.source_filters == {"q": "王小"}


def test_list_from_tasks_filters_by_plan_step_and_target_date(client, hospital):
    campaign = make_campaign(hospital.cardio)
    plan = make_plan(hospital.cardio, name="心衰随访", steps=[{"day_offset": 3, "title": "3天"}])
    wanted = make_task(hospital.cardio, plan=plan)
    make_task(hospital.cardio)  # another plan
    step = plan.steps.get()
    client.force_login(hospital.carol)
    data = {
        "source": "tasks",
        "t-plan": plan.pk,
        "t-step": step.pk,
        "t-status": "open",
        "t-date_from": (wanted.target_date - dt.timedelta(days=1)).isoformat(),
        "t-date_to": (wanted.target_date + dt.timedelta(days=1)).isoformat(),
    }
    response = client.post(f"/campaigns/{campaign.pk}/list/", data)
    assert response.status_code == 302
    target = campaign.targets.get()
    assert target.task == wanted and target.patient == wanted.patient


def test_list_from_patients_by_tag(client, hospital):
    campaign = make_campaign(hospital.cardio)
    tagged = make_patient_in(hospital.cardio, tags=["高血压", "糖尿病"])
    make_patient_in(hospital.cardio, tags=["高血压病史"])
    client.force_login(hospital.carol)
    response = client.post(
        f"/campaigns/{campaign.pk}/list/",
        {"source": "patients", "p-tag": "糖尿病", "p-department": hospital.cardio.pk},
    )
    assert response.status_code == 302
    assert list(campaign.targets.values_list("patient_id", flat=True)) == [tagged.pk]


def test_message_placeholders_are_spoken_the_chinese_way(hospital):
    campaign = make_campaign(hospital.cardio)
    patient = make_patient_in(hospital.cardio, name="李红", sex="F")
    target = campaign.targets.create(patient=patient)
    today = dt.date(2026, 11, 23)
    text = services.render_message(campaign.message, services.message_values(target, today=today))
    assert text.startswith("李女士您好，这里是心内科，请您于今天")
    assert "2026" not in text and "{" not in text


def test_building_a_list_does_not_query_per_patient(hospital, django_assert_max_num_queries):
    campaign = make_campaign(hospital.cardio)
    patients = [make_patient_in(hospital.cardio) for _ in range(40)]
    patients[3].is_deceased = True  # one the policy looks at closely
    with django_assert_max_num_queries(12):
        result = services.add_patients(campaign, patients, acting_user=hospital.carol)
    assert (result.added, result.skipped) == (39, 1)
