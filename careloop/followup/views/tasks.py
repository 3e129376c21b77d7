"""The nurse's workspace, the task list and the task page (F2.3, F2.4)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.core.export import Column, export_xlsx
from careloop.core.formats import mask_phone
from careloop.followup import queries, services, states
from careloop.followup.choices import TaskStatus
from careloop.followup.forms import AssignForm, OutcomeForm, TaskFilterForm, WithdrawForm
from careloop.followup.models import Notification, Task
from careloop.followup.views.common import errors_text, safe_next
from careloop.patients.models import Encounter
from careloop.surveys.forms import answers_from_post
from careloop.surveys.schema import AnswerError
from careloop.surveys.services import SurveyError

PAGE_SIZE = 50
WORKSPACE_LIMIT = 200
POOL_LIMIT = 20
# Beyond this an export is refused with a message rather than cut short without a word.
EXPORT_MAX_ROWS = 50_000


@permission_required("followup.view_task")
def workspace(request: AuthedRequest) -> HttpResponse:
    now = timezone.now()
    context = {
        "tasks": queries.workspace_tasks(request.user, now=now)[:WORKSPACE_LIMIT],
        "counts": queries.workspace_counts(request.user, now=now),
        "pool": queries.pool_tasks(request.user, now=now)[:POOL_LIMIT]
        if request.user.has_perm("followup.work_task")
        else [],
        "notifications": queries.unread_notifications(request.user),
        "now": now,
    }
    return render(request, "followup/workspace.html", context)


# --- list and export -----------------------------------------------------------------------------


def _filtered(request: AuthedRequest) -> tuple[TaskFilterForm, Any]:
    today = states.local_today()
    form = TaskFilterForm(request.GET or None, user=request.user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    tasks = queries.task_list(request.user, data, today)
    if form.is_bound and not form.is_valid():
        tasks = tasks.none()
    return form, tasks


@permission_required("followup.view_task")
def task_list(request: AuthedRequest) -> HttpResponse:
    form, tasks = _filtered(request)
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    if getattr(request, "htmx", False) and request.htmx.target == "task-results":  # type: ignore[attr-defined]
        return render(request, "followup/_task_results.html", context)
    return render(request, "followup/task_list.html", context)


def _export_columns(full_phone: bool) -> list[Column]:
    def phone(task: Task) -> str:
        return task.patient.phone if full_phone else mask_phone(task.patient.phone)

    def status(task: Task) -> str:
        return str(TaskStatus(task.current_status).label)  # type: ignore[attr-defined]

    return [
        Column(gettext_lazy("Task"), "pk", 8),
        Column(gettext_lazy("Patient"), "patient.name", 12),
        Column(gettext_lazy("Phone"), phone, 16),
        Column(gettext_lazy("Medical record number"), "patient.record_no", 14),
        Column(gettext_lazy("Department"), "department.name", 12),
        Column(gettext_lazy("Plan"), "plan.name", 20),
        Column(gettext_lazy("Step"), "step.title", 14),
        Column(gettext_lazy("Channel"), "get_channel_display", 12),
        Column(gettext_lazy("Status"), status, 10),
        Column(gettext_lazy("Assignee"), lambda t: str(t.assignee) if t.assignee else "", 12),
        Column(gettext_lazy("Target date"), "target_date", 12),
        Column(gettext_lazy("Window opens"), "window_start", 12),
        Column(gettext_lazy("Deadline"), "deadline", 12),
        Column(gettext_lazy("Attempts"), "attempts", 8),
        Column(gettext_lazy("Last outcome"), "get_outcome_display", 12),
        Column(gettext_lazy("Next attempt"), "next_attempt_at", 18),
        Column(gettext_lazy("Reason"), "end_reason", 24),
    ]


@permission_required("followup.view_task", "patients.export_patients")
def task_export(request: AuthedRequest) -> HttpResponse:
    _form, tasks = _filtered(request)
    total = tasks.count()
    if total > EXPORT_MAX_ROWS:
        messages.error(
            request,
            _("%(n)s tasks match; narrow the filters to at most %(max)s to export.")
            % {"n": total, "max": EXPORT_MAX_ROWS},
        )
        return redirect(f"{reverse('followup:task_list')}?{request.GET.urlencode()}")
    full_phone = request.user.has_perm("patients.reveal_patient")
    failures = request.GET.get("status") == "failures"
    name = _("follow-up failures") if failures else _("follow-up tasks")
    response = export_xlsx(tasks, _export_columns(full_phone), f"{name}.xlsx")
    audit.record(
        AuditAction.EXPORT,
        user=request.user,
        detail={
            "list": "followup_failures" if failures else "followup_tasks",
            "rows": response.row_count,  # type: ignore[attr-defined]
            "full_phone": full_phone,
        },
        request=request,
    )
    return response


# --- the task page -------------------------------------------------------------------------------


def _encounter_of(task: Task) -> Encounter | None:
    if task.enrollment.encounter_id:
        return task.enrollment.encounter
    return task.patient.encounters.order_by("-started_at").first()


def _last_response(task: Task) -> Any:
    """The questionnaire response of the task's latest reached attempt, with its version."""
    record = (
        task.records.filter(response__isnull=False)
        .select_related("response__version__questionnaire")
        .order_by("-recorded_at", "-pk")
        .first()
    )
    return record.response if record else None


def _task_context(request: AuthedRequest, task: Task, **extra: Any) -> dict[str, Any]:
    user = request.user
    is_open = task.status in states.OPEN
    today = states.local_today()
    # A finished task shows what was answered, on the version it was answered on.
    response = None if is_open else _last_response(task)
    if response is not None:
        version = response.version
    else:
        version = services.questionnaire_version(task.step) if is_open else None
    context = {
        "task": task,
        "patient": task.patient,
        "encounter": _encounter_of(task),
        "current_status": states.current_status(
            task.status, window_start=task.window_start, deadline=task.deadline, today=today
        ),
        "version": version,
        "definition": version.definition if version else None,
        "is_open": is_open,
        "answers": response.answers if response else {},
        "answer_errors": {},
        "records": task.records.select_related("recorded_by", "response").order_by(
            "-recorded_at", "-pk"
        ),
        "siblings": task.enrollment.tasks.select_related("step").order_by("target_date"),
        "can_work": is_open and user.has_perm("followup.work_task"),
        "can_claim": is_open and task.assignee_id is None and user.has_perm("followup.work_task"),
        "assign_form": AssignForm(
            department_id=task.department_id, initial={"assignee": task.assignee_id}
        )
        if is_open and user.has_perm("followup.assign_task")
        else None,
        "withdraw_form": WithdrawForm()
        if task.enrollment.status == "active" and user.has_perm("followup.change_enrollment")
        else None,
        "form": OutcomeForm(),
        "next": safe_next(request),
    }
    context.update(extra)
    return context


@permission_required("followup.view_task")
def task_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    if request.method == "POST" and not request.user.has_perm("followup.work_task"):
        raise PermissionDenied  # leaders and others see the task read-only
    task = queries.get_visible_task(request.user, pk)
    if request.method == "POST":
        return _record_outcome(request, task)
    audit.record(
        AuditAction.VIEW_PATIENT,
        user=request.user,
        patient=task.patient,
        obj=task,
        detail={"screen": "followup_task"},
        request=request,
    )
    return render(request, "followup/task_detail.html", _task_context(request, task))


def _record_outcome(request: AuthedRequest, task: Task) -> HttpResponse:
    form = OutcomeForm(request.POST)
    version = services.questionnaire_version(task.step)
    answers = answers_from_post(version.definition, request.POST) if version else {}
    answer_errors: dict[str, str] = {}
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.record_outcome(
                task,
                outcome=data["outcome"],
                answers=answers if data["outcome"] == "reached" and version else None,
                note=data["note"],
                callback_at=data.get("callback_at"),
                acting_user=request.user,
            )
        except AnswerError as exc:
            answer_errors = exc.errors
            form.add_error(None, _("Some answers need correcting; nothing was saved."))
        except (services.FollowupError, SurveyError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Outcome recorded: %(outcome)s.") % {"outcome": task.get_outcome_display()},
            )
            return redirect(safe_next(request) or reverse("followup:workspace"))
    context = _task_context(request, task, form=form, answers=answers, answer_errors=answer_errors)
    return render(request, "followup/task_detail.html", context)


@require_POST
@permission_required("followup.work_task")
def task_claim(request: AuthedRequest, pk: int) -> HttpResponse:
    task = queries.get_visible_task(request.user, pk)
    if services.claim(task, acting_user=request.user):
        messages.success(request, _("The task is yours."))
    else:
        messages.error(request, _("Someone else took this task first."))
    return redirect(safe_next(request) or reverse("followup:task_detail", args=[task.pk]))


@require_POST
@permission_required("followup.assign_task")
def task_assign(request: AuthedRequest, pk: int) -> HttpResponse:
    task = queries.get_visible_task(request.user, pk)
    form = AssignForm(request.POST, department_id=task.department_id)
    if not form.is_valid():
        messages.error(request, errors_text(form))
    else:
        try:
            services.assign(task, assignee=form.cleaned_data["assignee"], acting_user=request.user)
        except services.FollowupError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("The task was reassigned."))
    return redirect(safe_next(request) or reverse("followup:task_detail", args=[task.pk]))


# --- notifications -------------------------------------------------------------------------------


@require_POST
@permission_required("followup.view_task")
def notification_read(request: AuthedRequest, pk: int) -> HttpResponse:
    if not Notification.objects.filter(pk=pk, user=request.user).exists():
        raise Http404("No such notification")
    services.mark_notifications_read(request.user, ids=[pk])
    return _notifications_response(request)


@require_POST
@permission_required("followup.view_task")
def notifications_read_all(request: AuthedRequest) -> HttpResponse:
    services.mark_notifications_read(request.user)
    return _notifications_response(request)


def _notifications_response(request: AuthedRequest) -> HttpResponse:
    if getattr(request, "htmx", False):
        return render(
            request,
            "followup/_notifications.html",
            {"notifications": queries.unread_notifications(request.user)},
        )
    return redirect("followup:workspace")
