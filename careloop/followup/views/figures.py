"""Follow-up figures (F2.7): ratios and breakdowns for a period, on screen and in Excel."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.core.export import Column, export_xlsx
from careloop.followup import queries, states
from careloop.followup.choices import TaskStatus
from careloop.followup.forms import FiguresForm


def _breakdown_titles() -> dict[str, str]:
    return {
        "nurse": _("By nurse"),
        "department": _("By department"),
        "plan": _("By plan"),
        "month": _("By month"),
    }


def _figures(request: AuthedRequest) -> dict[str, Any]:
    today = states.local_today()
    start, end = queries.default_period(today)
    form = FiguresForm(request.GET or None, user=request.user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    selection = queries.FigureFilter(
        date_from=data.get("date_from") or start,
        date_to=data.get("date_to") or end,
        department=data.get("department"),
        plan=data.get("plan"),
        nurse=data.get("nurse"),
    )
    if not form.is_bound:
        form = FiguresForm(
            initial={"date_from": selection.date_from, "date_to": selection.date_to},
            user=request.user,
        )
    counts = queries.figure_status_counts(request.user, selection, today)
    titles = _breakdown_titles()
    breakdowns = [
        (key, titles[key], queries.breakdown(request.user, selection, today, key))
        for key in queries.BREAKDOWNS
    ]
    return {
        "form": form,
        "selection": selection,
        "summary": queries.figures_summary(request.user, selection, today),
        "status_counts": [(TaskStatus(k).label, k, n) for k, n in counts.items()],
        "breakdowns": breakdowns,
        "chart": _chart_data(next(rows for k, _t, rows in breakdowns if k == "month"), counts),
    }


def _chart_data(months: list[queries.FigureRow], counts: dict[str, int]) -> dict[str, Any]:
    """What figures.js draws with ECharts: the months' ratios and the tasks per state."""
    rows = [row for row in months if row.key is not None]
    return {
        "labels": {
            "discharged": _("Discharged"),
            "followed": _("Followed up"),
            "ratio": _("Follow-up ratio"),
            "status": _("Tasks by status"),
        },
        "months": [row.label for row in rows],
        "discharged": [row.discharged or 0 for row in rows],
        "followed": [row.followed or 0 for row in rows],
        "ratio": [_percent(row.followup_ratio) for row in rows],
        "status": [{"name": str(TaskStatus(k).label), "value": n} for k, n in counts.items() if n],
    }


@permission_required("followup.view_figures")
def figures(request: AuthedRequest) -> HttpResponse:
    context = _figures(request)
    context["query"] = request.GET.urlencode()
    return render(request, "followup/figures.html", context)


def _percent(value: Any) -> Any:
    return float(value) if value is not None else None


EXPORT_COLUMNS = [
    Column(gettext_lazy("Breakdown"), "breakdown", 12),
    Column(gettext_lazy("Group"), "label", 20),
    Column(gettext_lazy("Discharged"), "row.discharged", 10),
    Column(gettext_lazy("Followed up"), "row.followed", 10),
    Column(gettext_lazy("Follow-up ratio %"), lambda r: _percent(r["row"].followup_ratio), 10),
    Column(gettext_lazy("Tasks"), "row.tasks", 8),
    Column(gettext_lazy("Done"), "row.done", 8),
    Column(gettext_lazy("Overdue"), "row.overdue", 8),
    Column(gettext_lazy("Unreached or lost"), "row.failed", 10),
    Column(gettext_lazy("On-time rate %"), lambda r: _percent(r["row"].on_time_rate), 10),
    Column(gettext_lazy("Attempts"), "row.attempts", 8),
    Column(gettext_lazy("Reached"), "row.reached", 8),
    Column(gettext_lazy("Reach rate %"), lambda r: _percent(r["row"].reach_rate), 10),
]


@permission_required("followup.view_figures")
def figures_export(request: AuthedRequest) -> HttpResponse:
    context = _figures(request)
    selection = context["selection"]
    period = f"{selection.date_from.isoformat()} – {selection.date_to.isoformat()}"
    rows: list[dict[str, Any]] = [
        {"breakdown": _("Whole period"), "label": period, "row": context["summary"]}
    ]
    for _key, title, breakdown_rows in context["breakdowns"]:
        rows.extend(
            {"breakdown": title, "label": row.label or "—", "row": row} for row in breakdown_rows
        )
    response = export_xlsx(rows, EXPORT_COLUMNS, f"{_('follow-up figures')}.xlsx")
    audit.record(
        AuditAction.EXPORT,
        user=request.user,
        detail={"list": "followup_figures", "rows": response.row_count},  # type: ignore[attr-defined]
        request=request,
    )
    return response
