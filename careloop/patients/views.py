"""Patient screens (F1.1, F1.2, F1.5, F1.6, F1.7, F7.8): parse → gate → form or service → render."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.core.export import Column, export_filtered_list
from careloop.core.formats import mask_phone, to_halfwidth
from careloop.patients import queries, services
from careloop.patients.choices import EncounterKind
from careloop.patients.filters import FLAG_CHOICES, PatientFilterForm
from careloop.patients.forms import ContactForm, FlagsForm, PatientForm, PhoneBlockForm
from careloop.patients.models import Encounter, Patient, PhoneBlock

PAGE_SIZE = 50
# Beyond this an export is refused with a message rather than cut short without a word.
EXPORT_MAX_ROWS = 50_000


def _errors_text(form: forms.Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _filtered(request: AuthedRequest) -> tuple[PatientFilterForm, QuerySet[Patient]]:
    form = PatientFilterForm(request.GET or None, user=request.user)
    patients = queries.with_last_encounter(queries.visible_to(request.user)).order_by("-id")
    if form.is_bound:
        patients = (
            queries.filter_patients(patients, form.cleaned_data)
            if form.is_valid()
            else patients.none()
        )
    return form, patients


@permission_required("patients.view_patient")
def patient_list(request: AuthedRequest) -> HttpResponse:
    form, patients = _filtered(request)
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    if getattr(request, "htmx", False) and request.htmx.target == "patient-results":  # type: ignore[attr-defined]
        return render(request, "patients/_results.html", context)
    return render(request, "patients/list.html", context)


def _flags_text(patient: Patient) -> str:
    labels = dict(FLAG_CHOICES)
    active = [
        labels[name]
        for name, on in (
            ("deceased", patient.is_deceased),
            ("do_not_contact", patient.do_not_contact),
            ("sms_opt_out", patient.sms_opt_out),
            ("call_opt_out", patient.call_opt_out),
            ("vip", patient.vip_level > 0),
        )
        if on
    ]
    return ", ".join(str(label) for label in active)


EXPORT_COLUMNS = [
    Column(gettext_lazy("Patient ID"), "pk", 10),
    Column(gettext_lazy("Name"), "name", 12),
    Column(gettext_lazy("Sex"), "get_sex_display", 6),
    Column(gettext_lazy("Birth date"), "birth_date", 12),
    # Exports leave the building more easily than screens: numbers stay masked (F7.8).
    Column(gettext_lazy("Phone"), lambda p: mask_phone(p.phone), 14),
    Column(gettext_lazy("Visit card number"), "card_no"),
    Column(gettext_lazy("Medical record number"), "record_no"),
    Column(gettext_lazy("Last department"), "last_department"),
    Column(
        gettext_lazy("Last encounter"),
        lambda p: EncounterKind(p.last_kind).label if p.last_kind else "",
    ),
    Column(gettext_lazy("Discharged"), "last_discharged_at", 18),
    Column(gettext_lazy("Diagnosis"), "last_diagnosis", 30),
    Column(gettext_lazy("Flags"), _flags_text, 20),
    Column(gettext_lazy("Tags"), "tags", 20),
]


@permission_required("patients.export_patients")
def patient_export(request: AuthedRequest) -> HttpResponse:
    form, patients = _filtered(request)
    list_url = f"{reverse('patients:list')}?{request.GET.urlencode()}"
    if form.is_bound and not form.is_valid():
        return redirect(list_url)
    return export_filtered_list(
        request,
        patients,
        EXPORT_COLUMNS,
        name="patients",
        list_url=list_url,
        too_many=_(
            "%(count)d patients match; an export holds at most %(max)d. Narrow the filters."
        ),
        max_rows=EXPORT_MAX_ROWS,
    )


@permission_required("patients.view_patient")
def patient_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    services.record_view(patient, acting_user=request.user, request=request)
    from careloop.followup.choices import TaskStatus
    from careloop.followup.models import Task

    encounters = (
        Encounter.objects.filter(patient=patient)
        .select_related("department")
        .prefetch_related("surgeries", "medications", "orders")
    )
    open_tasks = (
        Task.objects.filter(
            patient=patient,
            status__in=[TaskStatus.PENDING, TaskStatus.DUE, TaskStatus.OVERDUE],
        )
        .select_related("plan", "step", "assignee")
        .order_by("deadline")
    )
    return render(
        request,
        "patients/detail.html",
        {
            "patient": patient,
            "contacts": patient.contacts.order_by("-is_primary", "id"),
            "encounters": encounters,
            "open_tasks": open_tasks,
            "timeline": queries.timeline(patient, request.user),
            "contact_form": ContactForm(),
            "flags_form": FlagsForm(initial={f: getattr(patient, f) for f in services.FLAG_FIELDS}),
        },
    )


@require_POST
@permission_required("patients.reveal_patient")
def reveal(request: AuthedRequest, pk: int, field: str) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    try:
        value = services.reveal(patient, field=field, acting_user=request.user, request=request)
    except KeyError as exc:
        raise Http404("No such field") from exc
    return render(request, "patients/_revealed.html", {"value": value})


def _save_form(request: AuthedRequest, form: PatientForm) -> Patient | None:
    patient = form.save(commit=False)
    try:
        return services.save_patient(
            patient, acting_user=request.user, changed_fields=form.changed_data, request=request
        )
    except ValueError as exc:  # the form checked already; this is a second line of defence
        form.add_error(None, str(exc))
        return None


@permission_required("patients.add_patient")
def patient_create(request: AuthedRequest) -> HttpResponse:
    # An unknown caller's number comes in as a one-time screen-pop token (?caller=…, F4.5) so the
    # number never appears in a URL; a number typed by hand can be passed as ?phone=….
    phone = to_halfwidth(request.GET.get("phone", ""))[:20]
    if request.GET.get("caller"):
        from careloop.contactcenter.services import resolve_screen_pop_token

        phone = resolve_screen_pop_token(request.GET["caller"], user=request.user) or phone
    initial: dict[str, Any] = {"phone": phone}
    form = PatientForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        patient = _save_form(request, form)
        if patient is not None:
            messages.success(request, _("The patient record is created."))
            return redirect("patients:detail", pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": None})


@permission_required("patients.change_patient")
def patient_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    form = PatientForm(request.POST or None, instance=patient, user=request.user)
    if request.method == "POST":
        if form.is_valid() and _save_form(request, form) is not None:
            messages.success(request, _("The patient record is saved."))
            return redirect("patients:detail", pk=patient.pk)
    else:
        # The edit form shows the full phone and ID numbers, so opening it is a viewing.
        services.record_view(patient, acting_user=request.user, screen="edit", request=request)
    return render(request, "patients/form.html", {"form": form, "patient": patient})


@require_POST
@permission_required("patients.change_patient")
def contact_add(request: AuthedRequest, pk: int) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    form = ContactForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("The contact was not added: %(errors)s") % {"errors": _errors_text(form)}
        )
    else:
        try:
            services.add_contact(
                patient, acting_user=request.user, request=request, **form.cleaned_data
            )
        except ValueError:
            messages.error(request, _("This phone number is already a contact of the patient."))
        else:
            messages.success(request, _("The contact is added."))
    return redirect(reverse("patients:detail", args=[patient.pk]) + "#contacts")


@require_POST
@permission_required("patients.change_patient")
def contact_remove(request: AuthedRequest, pk: int, contact_pk: int) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    contact = get_object_or_404(patient.contacts, pk=contact_pk)
    services.remove_contact(contact, acting_user=request.user, request=request)
    messages.success(request, _("The contact is removed."))
    return redirect(reverse("patients:detail", args=[patient.pk]) + "#contacts")


@require_POST
@permission_required("patients.change_patient")
def flags(request: AuthedRequest, pk: int) -> HttpResponse:
    patient = queries.get_visible_patient(request.user, pk)
    form = FlagsForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("The flags were not saved: %(errors)s") % {"errors": _errors_text(form)}
        )
    else:
        change = services.set_flags(
            patient, acting_user=request.user, request=request, **form.cleaned_data
        )
        if not change.changed:
            messages.info(request, _("Nothing changed."))
        elif change.cancelled_tasks:
            messages.success(
                request,
                _("The flags are saved; %(count)d open follow-up tasks were cancelled.")
                % {"count": change.cancelled_tasks},
            )
        else:
            messages.success(request, _("The flags are saved."))
    return redirect(reverse("patients:detail", args=[patient.pk]) + "#flags")


# --- blocked numbers (F1.7) ----------------------------------------------------------------------


@permission_required("patients.view_phoneblock")
def block_list(request: AuthedRequest) -> HttpResponse:
    blocks = PhoneBlock.objects.select_related("created_by").order_by("-created_at")
    q = to_halfwidth(request.GET.get("q", "")).strip()
    if q:
        blocks = blocks.filter(phone__contains=q.replace(" ", ""))
    page = Paginator(blocks, PAGE_SIZE).get_page(request.GET.get("page"))
    form = PhoneBlockForm()
    query = urlencode({"q": q}) if q else ""
    return render(
        request, "patients/blocks.html", {"page": page, "form": form, "q": q, "query": query}
    )


@require_POST
@permission_required("patients.add_phoneblock")
def block_add(request: AuthedRequest) -> HttpResponse:
    form = PhoneBlockForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("The number was not added: %(errors)s") % {"errors": _errors_text(form)}
        )
    else:
        try:
            services.block_phone(acting_user=request.user, **form.cleaned_data)
        except ValueError:
            messages.error(request, _("This number is already on the list."))
        else:
            messages.success(request, _("The number is added to the list."))
    return redirect("patients:blocks")


@require_POST
@permission_required("patients.delete_phoneblock")
def block_remove(request: AuthedRequest, block_pk: int) -> HttpResponse:
    block = get_object_or_404(PhoneBlock, pk=block_pk)
    services.unblock_phone(block, acting_user=request.user)
    messages.success(request, _("The number is removed from the list."))
    return redirect("patients:blocks")
