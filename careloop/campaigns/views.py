"""Campaign screens: parse → access gate → form or one service → render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.campaigns import queries, services
from careloop.campaigns.choices import (
    CampaignKind,
    CampaignState,
    ListSource,
    TargetState,
    result_label,
)
from careloop.campaigns.forms import CampaignForm, PatientListForm, SkipForm, TaskListForm
from careloop.campaigns.models import Campaign, CampaignTarget
from careloop.core.export import Column, export_xlsx
from careloop.core.formats import mask_phone
from careloop.followup import states
from careloop.followup.forms import OutcomeForm
from careloop.followup.services import FollowupError
from careloop.outreach.policy import current_policy
from careloop.surveys.forms import answers_from_post
from careloop.surveys.schema import AnswerError
from careloop.surveys.services import SurveyError

PAGE_SIZE = 50
#: Beyond this a list is refused with a message rather than silently cut short.
MAX_TARGETS = 20_000


@permission_required("campaigns.view_campaign")
def campaign_list(request: AuthedRequest) -> HttpResponse:
    campaigns = queries.campaigns_visible_to(request.user)
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "campaigns/list.html", {"page": page})


@permission_required("campaigns.run_campaign")
def campaign_create(request: AuthedRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        campaign = form.save(commit=False)
        campaign.created_by = request.user
        campaign.save()
        messages.success(request, _("The campaign is created. Now build its list."))
        return redirect("campaigns:build", pk=campaign.pk)
    return render(request, "campaigns/form.html", _form_context(form, None))


def _form_context(form: CampaignForm, campaign: Campaign | None) -> dict[str, Any]:
    return {"form": form, "campaign": campaign, "policy": current_policy()}


@permission_required("campaigns.run_campaign")
def campaign_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    campaign = queries.get_visible_campaign(request.user, pk)
    if campaign.state != CampaignState.DRAFT:
        messages.error(request, _("Only a draft campaign can be changed."))
        return redirect("campaigns:detail", pk=campaign.pk)
    form = CampaignForm(request.POST or None, instance=campaign, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("The campaign is saved."))
        return redirect("campaigns:detail", pk=campaign.pk)
    return render(request, "campaigns/form.html", _form_context(form, campaign))


@permission_required("campaigns.view_campaign")
def campaign_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    campaign = queries.get_visible_campaign(request.user, pk)
    targets = CampaignTarget.objects.filter(campaign=campaign).select_related(
        "patient", "task", "claimed_by"
    )
    state = request.GET.get("state", "")
    if state:
        targets = targets.filter(state=state)
    page = Paginator(targets.order_by("pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "campaign": campaign,
        "progress": queries.progress(campaign),
        "page": page,
        "state": state,
        "query": f"state={state}" if state else "",
        "can_run": request.user.has_perm("campaigns.run_campaign"),
        "can_dial": campaign.kind == CampaignKind.PREVIEW
        and campaign.state == CampaignState.RUNNING
        and request.user.has_perm("followup.work_task"),
        "target_states": TargetState.choices,
        "waiting_until": _waiting_until(campaign),
    }
    return render(request, "campaigns/detail.html", context)


def _waiting_until(campaign: Campaign) -> Any:
    """When a running automated campaign is outside its calling hours: their next opening."""
    if campaign.state != CampaignState.RUNNING or not campaign.is_automated:
        return None
    now = timezone.now()
    if services.in_window(campaign, now):
        return None
    return services.next_window_time(campaign, now) or False


# --- building the list ---------------------------------------------------------------------------


def _list_forms(request: AuthedRequest) -> tuple[str, TaskListForm, PatientListForm]:
    data = request.POST if request.method == "POST" else request.GET
    source = data.get("source", ListSource.TASKS)
    bound = data if "source" in data else None
    task_form = TaskListForm(
        bound if source == ListSource.TASKS else None, user=request.user, prefix="t"
    )
    patient_form = PatientListForm(
        bound if source == ListSource.PATIENTS else None, user=request.user, prefix="p"
    )
    return source, task_form, patient_form


def _matching(request: AuthedRequest, source: str, form: Any) -> tuple[Any, int]:
    """The rows a valid list form selects and their number of distinct patients."""
    if source == ListSource.TASKS:
        tasks = queries.tasks_for_list(request.user, form.cleaned_data, states.local_today())
        return tasks, tasks.values("patient_id").distinct().count()
    patients = queries.patients_for_list(request.user, form.cleaned_data)
    tag = (form.cleaned_data.get("tag") or "").strip()
    if tag and not _tag_in_database():
        ids = queries.with_tag(patients, tag)
        patients = patients.filter(pk__in=ids)
    return patients, patients.count()


def _tag_in_database() -> bool:
    from django.db import connection

    return bool(connection.features.supports_json_field_contains)


def _filters_record(form: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in form.cleaned_data.items():
        if value in (None, "", []):
            continue
        out[name] = getattr(
            value, "pk", value if isinstance(value, str | int | list) else str(value)
        )
    return out


@permission_required("campaigns.run_campaign")
def campaign_build(request: AuthedRequest, pk: int) -> HttpResponse:
    """GET: the two list builders with a preview count (htmx); POST: add the patients."""
    campaign = queries.get_visible_campaign(request.user, pk)
    source, task_form, patient_form = _list_forms(request)
    form = task_form if source == ListSource.TASKS else patient_form
    count = None
    if form.is_bound and form.is_valid():
        rows, count = _matching(request, source, form)
        if request.method == "POST":
            if campaign.state != CampaignState.DRAFT:
                messages.error(
                    request, _("Patients can be added only while the campaign is a draft.")
                )
                return redirect("campaigns:detail", pk=campaign.pk)
            if count > MAX_TARGETS:
                messages.error(
                    request,
                    _("%(n)s patients match; a campaign holds at most %(max)s. Narrow the filters.")
                    % {"n": count, "max": MAX_TARGETS},
                )
            else:
                rows = rows.select_related("patient", "department") if source == "tasks" else rows
                if source == ListSource.TASKS:
                    result = services.add_tasks(campaign, rows.iterator(), acting_user=request.user)
                else:
                    result = services.add_patients(
                        campaign, rows.iterator(), acting_user=request.user
                    )
                Campaign.objects.filter(pk=campaign.pk).update(
                    source=source, source_filters=_filters_record(form)
                )
                messages.success(
                    request,
                    _(
                        "%(added)s patients added to call, %(skipped)s added as skipped "
                        "(the contact policy forbids calling them), %(duplicates)s already in the list."
                    )
                    % {
                        "added": result.added,
                        "skipped": result.skipped,
                        "duplicates": result.duplicates,
                    },
                )
                return redirect("campaigns:detail", pk=campaign.pk)
    if getattr(request, "htmx", False) and request.method == "GET":
        return render(
            request, "campaigns/_count.html", {"count": count, "form": form, "source": source}
        )
    context = {
        "campaign": campaign,
        "source": source,
        "task_form": task_form,
        "patient_form": patient_form,
        "count": count,
        "in_list": CampaignTarget.objects.filter(campaign=campaign).count(),
    }
    return render(request, "campaigns/build.html", context)


@require_POST
@permission_required("campaigns.run_campaign")
def campaign_clear(request: AuthedRequest, pk: int) -> HttpResponse:
    campaign = queries.get_visible_campaign(request.user, pk)
    try:
        removed = services.remove_pending_targets(campaign, acting_user=request.user)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(n)s patients removed from the list.") % {"n": removed})
    return redirect("campaigns:build", pk=campaign.pk)


# --- running -------------------------------------------------------------------------------------

_ACTIONS = {
    "start": (services.start, gettext_lazy("The campaign is running.")),
    "pause": (services.pause, gettext_lazy("The campaign is paused.")),
    "resume": (services.resume, gettext_lazy("The campaign is running again.")),
    "cancel": (services.cancel, gettext_lazy("The campaign is cancelled.")),
}


@require_POST
@permission_required("campaigns.run_campaign")
def campaign_action(request: AuthedRequest, pk: int, action: str) -> HttpResponse:
    if action not in _ACTIONS:
        raise Http404("No such action")
    campaign = queries.get_visible_campaign(request.user, pk)
    change, done = _ACTIONS[action]
    try:
        change(campaign, acting_user=request.user)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, str(done))
    return redirect("campaigns:detail", pk=campaign.pk)


# --- preview dialling ----------------------------------------------------------------------------


def _preview_version(target: CampaignTarget) -> Any:
    from careloop.followup.services import questionnaire_version

    if target.task is not None and target.task.status in states.OPEN:
        return questionnaire_version(target.task.step)
    return target.campaign.questionnaire


@permission_required("campaigns.view_campaign", "followup.work_task")
def campaign_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    """The nurse's page: the next patient (masked number, card), call / skip, the outcome."""
    campaign = queries.get_visible_campaign(request.user, pk)
    if campaign.kind != CampaignKind.PREVIEW:
        raise Http404("Not a preview-dialling campaign")
    target = None
    if campaign.state == CampaignState.RUNNING:
        target = services.claim_next(campaign, acting_user=request.user)
    form = OutcomeForm()
    answers: dict[str, Any] = {}
    answer_errors: dict[str, str] = {}
    version = None
    if target is not None:
        version = _preview_version(target)
        if request.method == "POST":
            form = OutcomeForm(request.POST)
            answers = answers_from_post(version.definition, request.POST) if version else {}
            if form.is_valid():
                data = form.cleaned_data
                try:
                    services.record_preview_outcome(
                        target,
                        outcome=data["outcome"],
                        answers=answers if data["outcome"] == "reached" and version else None,
                        note=data["note"],
                        callback_at=data.get("callback_at"),
                        acting_user=request.user,
                    )
                except AnswerError as exc:
                    answer_errors = exc.errors
                    form.add_error(None, _("Some answers need correcting; nothing was saved."))
                except (services.CampaignError, SurveyError, FollowupError) as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(request, _("Outcome recorded. Next patient."))
                    return redirect("campaigns:preview", pk=campaign.pk)
        else:
            audit.record(
                AuditAction.VIEW_PATIENT,
                user=request.user,
                patient=target.patient,
                obj=target,
                detail={"screen": "campaign_preview", "campaign": campaign.pk},
                request=request,
            )
    elif request.method == "POST":
        messages.error(request, _("This patient is no longer yours to call."))
        return redirect("campaigns:preview", pk=campaign.pk)
    context = {
        "campaign": campaign,
        "target": target,
        "patient": target.patient if target else None,
        "task": target.task if target else None,
        "encounter": target.patient.encounters.select_related("department")
        .order_by("-started_at")
        .first()
        if target
        else None,
        "form": form,
        "skip_form": SkipForm(),
        "version": version,
        "definition": version.definition if version else None,
        "answers": answers,
        "answer_errors": answer_errors,
        "progress": queries.progress(campaign),
    }
    return render(request, "campaigns/preview.html", context)


@require_POST
@permission_required("campaigns.view_campaign", "followup.work_task")
def campaign_skip(request: AuthedRequest, pk: int, target_pk: int) -> HttpResponse:
    campaign = queries.get_visible_campaign(request.user, pk)
    target = CampaignTarget.objects.filter(campaign=campaign, pk=target_pk).first()
    if target is None:
        raise Http404("No such target")
    form = SkipForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.skip_target(target, acting_user=request.user, reason=reason)
    except services.CampaignError as exc:
        messages.error(request, str(exc))
    return redirect("campaigns:preview", pk=campaign.pk)


# --- results -------------------------------------------------------------------------------------


@permission_required("campaigns.view_campaign")
def campaign_report(request: AuthedRequest, pk: int) -> HttpResponse:
    campaign = queries.get_visible_campaign(request.user, pk)
    failed = queries.failed_targets(campaign)
    page = Paginator(failed, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "campaign": campaign,
        "progress": queries.progress(campaign),
        "results": queries.result_counts(campaign),
        "summaries": queries.answers_summary(campaign),
        "page": page,
        "query": "",
        "can_export": request.user.has_perm("patients.export_patients"),
    }
    return render(request, "campaigns/report.html", context)


def _export_columns(full_phone: bool) -> list[Column]:
    def phone(target: CampaignTarget) -> str:
        return target.patient.phone if full_phone else mask_phone(target.patient.phone)

    return [
        Column(gettext_lazy("Patient ID"), "patient.pk", 10),
        Column(gettext_lazy("Name"), "patient.name", 12),
        Column(gettext_lazy("Phone"), phone, 16),
        Column(gettext_lazy("Medical record number"), "patient.record_no", 14),
        Column(gettext_lazy("Follow-up task"), "task_id", 10),
        Column(gettext_lazy("Last result"), lambda t: result_label(t.last_result), 14),
        Column(gettext_lazy("Attempts"), "attempts", 8),
        Column(gettext_lazy("Finished"), "finished_at", 18),
    ]


@permission_required("campaigns.view_campaign", "patients.export_patients")
def campaign_export(request: AuthedRequest, pk: int) -> HttpResponse:
    """The failed numbers as Excel: real numbers for people who may reveal them, masked otherwise."""
    campaign = queries.get_visible_campaign(request.user, pk)
    full_phone = request.user.has_perm("patients.reveal_patient")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    name = _("failed numbers")
    response = export_xlsx(
        queries.failed_targets(campaign).iterator(chunk_size=2000),
        _export_columns(full_phone),
        f"{campaign.name}-{name}-{stamp}",
    )
    audit.record(
        AuditAction.EXPORT,
        user=request.user,
        obj=campaign,
        detail={
            "list": "campaign_failed_numbers",
            "campaign": campaign.pk,
            "rows": response.row_count,  # type: ignore[attr-defined]
            "full_phone": full_phone,
        },
        request=request,
    )
    return response
