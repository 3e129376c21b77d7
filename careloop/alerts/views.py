"""Alert screens: the list with counts and rate, the alert page with the clinician's actions,
and the rules (hospital policy) for doctors and administrators."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest
from careloop.alerts import queries, services
from careloop.alerts.forms import AdviseForm, AlertFilterForm, AlertRuleForm, CloseForm
from careloop.alerts.models import Alert, AlertRule
from careloop.audit import services as audit
from careloop.audit.models import AuditAction

PAGE_SIZE = 50


def _allowed(check: Callable[[Any], bool]) -> Callable[..., Any]:
    """Log-in first (anonymous → login page), then ``check(user)`` (→ 403)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: AuthedRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


@_allowed(queries.can_view)
def alert_list(request: AuthedRequest) -> HttpResponse:
    now = timezone.now()
    form = AlertFilterForm(request.GET or None, user=request.user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    alerts = queries.alert_list(request.user, data, now)
    if form.is_bound and not form.is_valid():
        alerts = alerts.none()
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "summary": queries.summary(request.user, data, now),
        "now": now,
    }
    return render(request, "alerts/alert_list.html", context)


@_allowed(queries.can_view)
def alert_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    alert = queries.get_visible_alert(request.user, pk)
    audit.record(
        AuditAction.VIEW_PATIENT,
        user=request.user,
        patient=alert.patient,
        obj=alert,
        detail={"screen": "alert"},
        request=request,
    )
    siblings = Alert.objects.filter(response_id=alert.response_id).order_by("id")
    context = {
        "alert": alert,
        "patient": alert.patient,
        "response": alert.response,
        "definition": alert.response.version.definition,
        "alert_keys": " ".join(sorted({a.question_key for a in siblings})),
        "siblings": siblings,
        "timeline": queries.timeline(alert),
        "advices": alert.advices.select_related("by", "task"),
        "can_advise": queries.can_advise(request.user),
        "advise_form": AdviseForm(),
        "close_form": CloseForm(),
    }
    return render(request, "alerts/alert_detail.html", context)


def _act(request: AuthedRequest, pk: int, action: Callable[..., Any]) -> HttpResponse:
    alert = queries.get_visible_alert(request.user, pk)
    try:
        action(alert)
    except services.AlertError as exc:
        messages.error(request, str(exc))
    return redirect("alerts:detail", pk=alert.pk)


@require_POST
@_allowed(queries.can_advise)
def alert_acknowledge(request: AuthedRequest, pk: int) -> HttpResponse:
    def run(alert: Any) -> None:
        services.acknowledge(alert, acting_user=request.user)
        messages.success(request, _("Alert acknowledged."))

    return _act(request, pk, run)


@require_POST
@_allowed(queries.can_advise)
def alert_advise(request: AuthedRequest, pk: int) -> HttpResponse:
    form = AdviseForm(request.POST)

    def run(alert: Any) -> None:
        if not form.is_valid():
            raise services.AlertError(_("Write the advice for the patient."))
        advice = services.advise(
            alert,
            text=form.cleaned_data["text"],
            channel=form.cleaned_data["channel"],
            acting_user=request.user,
        )
        messages.success(
            request,
            _("Advice recorded; follow-up task #%(id)s passes it on.") % {"id": advice.task_id},
        )

    return _act(request, pk, run)


@require_POST
@_allowed(queries.can_advise)
def alert_close(request: AuthedRequest, pk: int) -> HttpResponse:
    form = CloseForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""

    def run(alert: Any) -> None:
        services.close(alert, note=note, acting_user=request.user)
        messages.success(request, _("Alert closed."))

    return _act(request, pk, run)


# --- rules ---------------------------------------------------------------------------------------


@_allowed(queries.can_edit_rules)
def rule_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "alerts/rule_list.html", {"rules": queries.rules()})


@_allowed(queries.can_edit_rules)
def rule_edit(request: AuthedRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk) if pk is not None else None
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Alert rule saved."))
        return redirect("alerts:rules")
    return render(request, "alerts/rule_form.html", {"form": form, "rule": rule})
