"""Thin views of the contact center: click-to-call, the call panel, recordings, the engine webhook."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.accounts.queries import visible_departments
from careloop.audit.models import AuditAction
from careloop.audit.services import record as audit
from careloop.contactcenter import queries, services
from careloop.contactcenter.engine_client import EngineError
from careloop.contactcenter.forms import AgentPhoneForm, ClickToCallForm, RatingReportForm
from careloop.contactcenter.models import AgentPhone
from careloop.core.export import Column, export_xlsx
from careloop.followup.queries import tasks_visible_to
from careloop.patients.models import PatientContact
from careloop.patients.queries import get_visible_patient

log = logging.getLogger(__name__)


@permission_required("followup.work_task")
def call_patient(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """GET: a page with the call panel for the patient; POST: place the call."""
    if request.method == "POST":
        return click_to_call(request, patient_id)
    patient = get_visible_patient(request.user, patient_id)
    return render(request, "contactcenter/call_patient.html", {"patient": patient})


@require_POST
@permission_required("followup.work_task")
def click_to_call(request: AuthedRequest, patient_id: int | None = None) -> HttpResponse:
    data = request.POST.copy()
    if patient_id is not None:
        data["patient"] = str(patient_id)
    form = ClickToCallForm(data)
    if not form.is_valid():
        return HttpResponseBadRequest("invalid form")
    patient = get_visible_patient(request.user, form.cleaned_data["patient"])
    task = None
    if form.cleaned_data.get("task"):
        task = (
            tasks_visible_to(request.user)
            .filter(pk=form.cleaned_data["task"], patient=patient)
            .first()
        )
        if task is None:
            raise Http404("No such task")
    contact = None
    number = form.cleaned_data.get("number") or "patient"
    if number != "patient":
        if not number.isdigit():
            return HttpResponseBadRequest("invalid number")
        contact = PatientContact.objects.filter(pk=int(number), patient=patient).first()
        if contact is None:
            raise Http404("No such contact")
    try:
        call = services.click_to_call(patient, acting_user=request.user, task=task, contact=contact)
    except services.CallError as exc:
        context = {"error": str(exc), "patient": patient, "task": task}
        return render(request, "contactcenter/_call_status.html", context, status=409)
    if getattr(request, "htmx", False):
        return render(request, "contactcenter/_call_status.html", {"call": call})
    return redirect("contactcenter:call", pk=call.pk)


@permission_required("followup.work_task")
def call_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    call = queries.get_visible_call(request.user, pk)
    return render(request, "contactcenter/call_detail.html", {"call": call})


@require_POST
@permission_required("followup.work_task")
def call_hangup(request: AuthedRequest, pk: int) -> HttpResponse:
    call = queries.get_visible_call(request.user, pk)
    try:
        services.hang_up(call, acting_user=request.user)
    except EngineError as exc:
        log.warning("hang-up of call %s failed: %s", call.pk, exc.code)
    call.refresh_from_db()
    if getattr(request, "htmx", False):
        return render(request, "contactcenter/_call_status.html", {"call": call})
    return redirect("contactcenter:call", pk=call.pk)


@require_POST
@permission_required("followup.work_task")
def call_hangup_rating(request: AuthedRequest, pk: int) -> HttpResponse:
    """End the nurse's side and put the patient through to the satisfaction rating (F3.3)."""
    call = queries.get_visible_call(request.user, pk)
    try:
        services.hang_up_for_rating(call, acting_user=request.user)
    except EngineError as exc:
        log.warning("hang-up for rating of call %s failed: %s", call.pk, exc.code)
    call.refresh_from_db()
    if getattr(request, "htmx", False):
        return render(request, "contactcenter/_call_status.html", {"call": call})
    return redirect("contactcenter:call", pk=call.pk)


def _engine_data_dir() -> Path:
    return Path(getattr(settings, "CC_ENGINE_DATA_DIR", settings.DATA_DIR / "engine")).resolve()


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@permission_required("patients.view_patient")
def recording_play(request: AuthedRequest, pk: int) -> HttpResponse:
    """Stream the Ogg file (Range requests for seeking); the first request of a play is audited."""
    recording = queries.get_visible_recording(request.user, pk)
    path = Path(recording.path).resolve()
    if not path.is_relative_to(_engine_data_dir()) or not path.is_file():
        raise Http404("Recording file missing")
    size = path.stat().st_size
    match = _RANGE.match(request.headers.get("Range", "").strip())
    start, end = 0, size - 1
    if match and (match.group(1) or match.group(2)):
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:
            start = max(size - int(match.group(2)), 0)
        if start > end or start >= size:
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            return refused
    if start == 0:
        download = request.GET.get("download") == "1"
        audit(
            AuditAction.DOWNLOAD_RECORDING if download else AuditAction.PLAY_RECORDING,
            user=request.user,
            patient=recording.call.patient,
            obj=recording,
            detail={"call": recording.call_id},
            request=request,
        )
    if match is None:
        whole = FileResponse(open(path, "rb"), content_type="audio/ogg")
        whole["Accept-Ranges"] = "bytes"
        return whole  # type: ignore[return-value]  # streamed, not buffered
    with open(path, "rb") as handle:
        handle.seek(start)
        body = handle.read(end - start + 1)
    response = HttpResponse(body, status=206, content_type="audio/ogg")
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


@permission_required("followup.work_task")
def my_phone(request: AuthedRequest) -> HttpResponse:
    phone = AgentPhone.objects.filter(user=request.user).first()
    if request.method == "POST":
        form = AgentPhoneForm(request.POST)
        if form.is_valid():
            services.save_agent_phone(
                request.user,
                kind=form.cleaned_data["kind"],
                uri=form.cleaned_data.get("uri", ""),
                acting_user=request.user,
            )
            return redirect("contactcenter:my_phone")
    else:
        form = AgentPhoneForm(initial={"kind": phone.kind, "uri": phone.uri} if phone else None)
    context = {"form": form, "phone": phone, "domain": services.sip_domain()}
    return render(request, "contactcenter/my_phone.html", context)


def webhook_secret() -> str:
    return getattr(settings, "ENGINE_WEBHOOK_SECRET", settings.ENGINE_TOKEN)


@csrf_exempt
@require_POST
def engine_events(request: HttpRequest) -> HttpResponse:
    """The engine's webhook: a batch of events, HMAC-signed (docs/engine.md#webhooks)."""
    secret = webhook_secret()
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    if not secret or not hmac.compare_digest(
        expected, request.headers.get("X-CareLoop-Signature", "")
    ):
        return HttpResponseForbidden("bad signature")
    try:
        batch = json.loads(request.body)["events"]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("bad body")
    services.handle_events([e for e in batch if isinstance(e, dict)])
    return JsonResponse({"ok": True})


# --- satisfaction report (F3.3) -------------------------------------------------------------------

View = Callable[..., HttpResponse]


def ratings_permission(view: View) -> View:
    """Supervisors, leaders and administrators (anonymous → login page, others → 403)."""

    @wraps(view)
    def wrapped(request: AuthedRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not queries.can_view_ratings(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _rating_selection(request: AuthedRequest) -> tuple[RatingReportForm, dict[str, Any]]:
    """The filter form and what it selects; the last 30 days by default. A department the user
    may not see is a 404, like another department's record."""
    department_id = request.GET.get("department", "")
    if department_id.isdigit() and not (
        visible_departments(request.user).filter(pk=int(department_id)).exists()
    ):
        raise Http404("No such department")
    form = RatingReportForm(request.GET or None, user=request.user)
    today = timezone.localdate()
    selection: dict[str, Any] = {
        "date_from": today - dt.timedelta(days=29),
        "date_to": today,
        "department": None,
    }
    if form.is_bound and form.is_valid():
        for key in selection:
            if form.cleaned_data.get(key):
                selection[key] = form.cleaned_data[key]
        if selection["date_from"] > selection["date_to"]:
            selection["date_from"] = selection["date_to"]
    return form, selection


def _report(request: AuthedRequest) -> tuple[RatingReportForm, dict[str, Any], Any]:
    form, selection = _rating_selection(request)
    calls = queries.rated_calls(request.user, **selection)
    return form, selection, queries.rating_report(calls)


RATING_LABELS = {
    1: gettext_lazy("Very dissatisfied"),
    2: gettext_lazy("Dissatisfied"),
    3: gettext_lazy("Neutral"),
    4: gettext_lazy("Satisfied"),
    5: gettext_lazy("Very satisfied"),
}


def _distribution(row: queries.RatingRow) -> list[dict[str, Any]]:
    """Bars of the 1-5 distribution, 5 first, widths relative to the largest."""
    top = max(row.distribution) or 1
    return [
        {
            "value": value,
            "label": RATING_LABELS[value],
            "count": row.distribution[value - 1],
            "width": round(100 * row.distribution[value - 1] / top),
        }
        for value in range(5, 0, -1)
    ]


@ratings_permission
def ratings(request: AuthedRequest) -> HttpResponse:
    form, selection, report = _report(request)
    context = {
        "form": form,
        "selection": selection,
        "report": report,
        "values": range(1, 6),
        "distribution": _distribution(report.total),
        "query": request.GET.urlencode(),
        "after_call": services.rating_after_call(),
    }
    return render(request, "contactcenter/ratings.html", context)


def _share(row: queries.RatingRow) -> float | None:
    return round(row.share_rated, 4) if row.share_rated is not None else None


def _pressed(value: int) -> Callable[[dict[str, Any]], int]:
    """How many pressed ``value`` in an export row."""
    return lambda item: int(item["row"].distribution[value - 1])


RATING_COLUMNS = [
    Column(gettext_lazy("Group"), "group", 10),
    Column(gettext_lazy("Department or nurse"), "row.label", 20),
    Column(gettext_lazy("Conversations"), "row.conversations", 12),
    Column(gettext_lazy("Put through to the rating"), "row.put_through", 14),
    Column(gettext_lazy("Rated"), "row.rated", 10),
    Column(gettext_lazy("Share rated"), lambda item: _share(item["row"]), 12),
    Column(gettext_lazy("Average rating"), "row.average", 12),
    *[Column(str(value), _pressed(value), 8) for value in range(1, 6)],
]


@ratings_permission
def ratings_export(request: AuthedRequest) -> HttpResponse:
    _form, selection, report = _report(request)
    rows = [{"group": _("Total"), "row": report.total}]
    rows += [{"group": _("Department"), "row": row} for row in report.departments]
    rows += [{"group": _("Nurse"), "row": row} for row in report.nurses]
    name = "call-ratings-{}-{}".format(
        selection["date_from"].strftime("%Y%m%d"), selection["date_to"].strftime("%Y%m%d")
    )
    response = export_xlsx(rows, RATING_COLUMNS, name)
    audit(
        AuditAction.EXPORT,
        user=request.user,
        detail={"list": "call_ratings", "rows": response.row_count},  # type: ignore[attr-defined]
        request=request,
    )
    return response
