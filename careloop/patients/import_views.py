"""Patient import screens (F1.3): upload → column mapping when needed → report with rejected rows."""

from __future__ import annotations

from pathlib import Path

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.accounts.models import User
from careloop.accounts.queries import sees_all_departments
from careloop.core.export import Column, export_xlsx
from careloop.patients.choices import ImportStatus
from careloop.patients.importing import FIELDS_BY_KEY, ReadError, staging
from careloop.patients.importing.forms import MappingForm, UploadForm
from careloop.patients.models import ImportBatch

REJECTED_PAGE_SIZE = 200


def batches_visible_to(user: User) -> QuerySet[ImportBatch]:
    """A user sees their own imports; hospital-wide staff see every import."""
    batches = ImportBatch.objects.select_related("created_by")
    return batches if sees_all_departments(user) else batches.filter(created_by=user)


def _get_batch(user: User, batch_id: int) -> ImportBatch:
    try:
        return batches_visible_to(user).get(pk=batch_id)
    except ImportBatch.DoesNotExist as exc:
        raise Http404("No such import") from exc


@permission_required("patients.import_patients")
def upload(request: AuthedRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            batch = staging.receive(
                form.cleaned_data["file"],
                default_department=form.cleaned_data["department"],
                acting_user=request.user,
                review=form.cleaned_data["review"],
            )
        except ReadError as exc:
            form.add_error("file", str(exc))
        else:
            url = reverse("patients:import_batch", args=[batch.pk])
            department = form.cleaned_data["department"]
            if batch.status == ImportStatus.PENDING and department is not None:
                url += f"?department={department.pk}"
            return redirect(url)
    recent = batches_visible_to(request.user)[:20]
    return render(request, "patients/import.html", {"form": form, "recent": recent})


@permission_required("patients.import_patients")
def batch_detail(request: AuthedRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch(request.user, batch_id)
    if batch.status == ImportStatus.PENDING:
        return _mapping(request, batch)
    if request.method == "POST":  # the mapping form sent twice: the import already started
        return redirect("patients:import_batch", batch.pk)
    page = Paginator(batch.rejected, REJECTED_PAGE_SIZE).get_page(request.GET.get("page"))
    mapping = [
        (label, FIELDS_BY_KEY[key].label if key in FIELDS_BY_KEY else None)
        for label, key in batch.column_mapping.items()
    ]
    return render(
        request,
        "patients/import_report.html",
        {
            "batch": batch,
            "page": page,
            "query": "",
            "mapping": mapping,
            "rows": batch.created + batch.updated + batch.unchanged + len(batch.rejected),
        },
    )


def _mapping(request: AuthedRequest, batch: ImportBatch) -> HttpResponse:
    try:
        info = staging.inspect_staged(batch)
    except ReadError:
        return redirect("patients:import_batch", batch.pk)
    form = MappingForm(
        request.POST or None,
        columns=info.columns,
        user=request.user,
        initial={"department": request.GET.get("department")},
    )
    if request.method == "POST" and form.is_valid():
        staging.start(
            batch,
            mapping=form.mapping(),
            default_department=form.department,
            acting_user=request.user,
        )
        return redirect("patients:import_batch", batch.pk)
    return render(
        request,
        "patients/import_mapping.html",
        {"batch": batch, "form": form, "header_row": info.header_row},
    )


@permission_required("patients.import_patients")
def rejected_xlsx(request: AuthedRequest, batch_id: int) -> HttpResponse:
    """The rejected rows of an import (row number and reason; no patient data)."""
    batch = _get_batch(request.user, batch_id)
    name = _("%(file)s - rejected rows") % {"file": Path(batch.file_name).stem}
    return export_xlsx(
        batch.rejected,
        [Column(_("Row"), "row", width=8), Column(_("Reason"), "reason", width=90)],
        filename=name,
    )
