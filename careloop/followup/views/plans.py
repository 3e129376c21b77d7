"""Plan, team and enrolment screens (F2.1, F2.2): parse → gate → form or service → render."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.followup import queries, services, states
from careloop.followup.forms import EnrolForm, PlanForm, PlanStepFormSet, TeamForm, WithdrawForm
from careloop.followup.models import Plan, PlanStep
from careloop.followup.views.common import safe_next
from careloop.patients.queries import get_visible_patient


@permission_required("followup.view_plan")
def plan_list(request: AuthedRequest) -> HttpResponse:
    plans = (
        queries.plans_visible_to(request.user)
        .annotate(
            step_count=Count("steps", distinct=True),
            active_enrollments=Count(
                "enrollments", filter=Q(enrollments__status="active"), distinct=True
            ),
        )
        .order_by("department__code", "name")
    )
    return render(request, "followup/plan_list.html", {"plans": plans})


@permission_required("followup.view_plan")
def plan_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    plan = queries.get_visible_plan(request.user, pk)
    steps = plan.steps.select_related("questionnaire").order_by("order")
    today = states.local_today()
    counts = queries.counts_by_status(
        queries.tasks_visible_to(request.user).filter(plan=plan), today
    )
    return render(
        request,
        "followup/plan_detail.html",
        {"plan": plan, "steps": steps, "counts": counts},
    )


_NEW_STEP_ORDER = 20000


def _renumber_steps(plan: Plan) -> None:
    """Number the steps 1..n by target day. Two passes through numbers no step holds (existing
    steps are below 10000, new ones from 20000) keep the unique (plan, order) constraint true
    at every UPDATE, even when two steps swap places."""
    steps = list(plan.steps.order_by("day_offset", "pk").values_list("pk", flat=True))
    for offset in (10000, 0):
        for number, pk in enumerate(steps, start=1):
            PlanStep.objects.filter(pk=pk).update(order=offset + number)


def _plan_form(request: AuthedRequest, plan: Plan | None) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = PlanForm(data, instance=plan, user=request.user)
    formset = PlanStepFormSet(data, instance=plan or Plan(), user=request.user, prefix="steps")
    if data is not None and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            saved = form.save(commit=False)
            if plan is None:
                saved.created_by = request.user
            saved.save()
            formset.instance = saved
            steps = formset.save(commit=False)
            for step in formset.deleted_objects:
                step.delete()
            for index, step in enumerate(steps):
                step.plan = saved
                if step.order is None:
                    step.order = _NEW_STEP_ORDER + index
                step.save()
            _renumber_steps(saved)
        messages.success(request, _("The plan was saved."))
        return redirect("followup:plan_detail", pk=saved.pk)
    return render(
        request, "followup/plan_form.html", {"form": form, "formset": formset, "plan": plan}
    )


@permission_required("followup.add_plan")
def plan_create(request: AuthedRequest) -> HttpResponse:
    return _plan_form(request, None)


@permission_required("followup.change_plan")
def plan_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    return _plan_form(request, queries.get_visible_plan(request.user, pk))


# --- teams ---------------------------------------------------------------------------------------


@permission_required("followup.view_team")
def team_list(request: AuthedRequest) -> HttpResponse:
    teams = queries.teams_visible_to(request.user).prefetch_related("members").order_by("name")
    return render(request, "followup/team_list.html", {"teams": teams})


def _team_form(request: AuthedRequest, team=None) -> HttpResponse:  # type: ignore[no-untyped-def]
    form = TeamForm(request.POST or None, instance=team, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("The team was saved."))
        return redirect("followup:team_list")
    return render(request, "followup/team_form.html", {"form": form, "team": team})


@permission_required("followup.change_team")
def team_create(request: AuthedRequest) -> HttpResponse:
    return _team_form(request)


@permission_required("followup.change_team")
def team_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    return _team_form(request, queries.get_visible_team(request.user, pk))


# --- enrolment -----------------------------------------------------------------------------------


@permission_required("followup.add_enrollment")
def enrol(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = get_visible_patient(request.user, patient_id)
    today = states.local_today()
    form = EnrolForm(request.POST or None, user=request.user, patient=patient, today=today)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            enrollment = services.enrol(
                data["plan"],
                patient,
                anchor_date=data["anchor_date"],
                encounter=data.get("encounter"),
                acting_user=request.user,
            )
        except services.FollowupError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Enrolled in %(plan)s (%(n)s tasks).")
                % {"plan": enrollment.plan.name, "n": enrollment.tasks.count()},
            )
            return redirect("followup:enrol", patient_id=patient.pk)
    return render(
        request,
        "followup/enrol.html",
        {
            "patient": patient,
            "form": form,
            "enrollments": queries.patient_enrollments(request.user, patient.pk),
            "withdraw_form": WithdrawForm(),
        },
    )


@require_POST
@permission_required("followup.change_enrollment")
def enrollment_withdraw(request: AuthedRequest, pk: int) -> HttpResponse:
    enrollment = queries.get_visible_enrollment(request.user, pk)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason for the withdrawal."))
    else:
        try:
            services.withdraw(
                enrollment, reason=form.cleaned_data["reason"], acting_user=request.user
            )
        except services.FollowupError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("The patient was withdrawn from the plan."))
    return redirect(safe_next(request) or reverse("followup:enrol", args=[enrollment.patient_id]))
