from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import queries
from careloop.audit import services as audit
from careloop.audit.forms import AuditFilterForm
from careloop.audit.models import AuditAction, AuditEvent
from careloop.core.export import Column, export_xlsx

EXPORT_COLUMNS = [
    Column(_("Time"), "at", 20),
    Column(_("User name"), "username"),
    Column(_("Action"), "get_action_display", 20),
    Column(_("Patient ID"), "patient_id", 10),
    Column(_("Object type"), "object_type"),
    Column(_("Object ID"), "object_id", 10),
    Column(_("IP address"), "ip"),
    Column(_("Detail"), lambda e: ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items())), 40),
]


def _filtered(request: AuthedRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    form = AuditFilterForm(request.GET or None)
    events = queries.visible_to(request.user)
    if form.is_bound:
        events = (
            queries.filter_events(events, form.cleaned_data) if form.is_valid() else events.none()
        )
    return form, events


@permission_required("audit.view_auditevent")
def event_list(request: AuthedRequest) -> HttpResponse:
    form, events = _filtered(request)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@permission_required("audit.view_auditevent")
def event_export(request: AuthedRequest) -> HttpResponse:
    form, events = _filtered(request)
    if form.is_bound and not form.is_valid():
        return redirect(f"{reverse('audit:list')}?{request.GET.urlencode()}")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = export_xlsx(events.iterator(chunk_size=2000), EXPORT_COLUMNS, f"audit-{stamp}")
    audit.record(
        AuditAction.EXPORT,
        user=request.user,
        detail={"list": "audit", "rows": response.row_count},  # type: ignore[attr-defined]
        request=request,
    )
    return response
