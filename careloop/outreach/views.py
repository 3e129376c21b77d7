"""The contact policy page and a patient's contact blocks (issue 4 item 5)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.outreach import policy
from careloop.outreach.choices import BlockSource
from careloop.outreach.forms import BlockForm, ContactPolicyForm
from careloop.outreach.models import ContactBlock
from careloop.patients.queries import get_visible_patient


@permission_required("outreach.view_contactpolicy")
def policy_edit(request: AuthedRequest) -> HttpResponse:
    current = policy.current_policy()
    can_change = request.user.has_perm("outreach.change_contactpolicy")
    form = ContactPolicyForm(request.POST or None, instance=current)
    if request.method == "POST":
        if not can_change:
            messages.error(request, _("You may read the contact policy but not change it."))
            return redirect("outreach:policy")
        if form.is_valid():
            saved = form.save(commit=False)
            saved.updated_by = request.user
            saved.save()
            messages.success(request, _("Contact policy saved."))
            return redirect("outreach:policy")
    return render(
        request,
        "outreach/policy.html",
        {"form": form, "policy": current, "can_change": can_change},
    )


@require_POST
@permission_required("patients.change_patient")
def block_add(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = get_visible_patient(request.user, patient_id)
    form = BlockForm(request.POST)
    if form.is_valid():
        block = policy.add_block(
            patient,
            form.cleaned_data["kind"],
            source=BlockSource.STAFF,
            reason=form.cleaned_data["reason"],
            user=request.user,
        )
        audit.record(
            AuditAction.CHANGE_PATIENT,
            user=request.user,
            patient=patient,
            obj=block,
            detail={"contact_block": block.kind},
            request=request,
        )
        messages.success(
            request,
            _("Recorded: %(kind)s. Open follow-up tasks were stopped.")
            % {"kind": block.get_kind_display()},
        )
    else:
        messages.error(request, _("Choose what to record."))
    return redirect(f"/patients/{patient.pk}/#flags")


@require_POST
@permission_required("patients.change_patient")
def block_lift(request: AuthedRequest, pk: int) -> HttpResponse:
    block = get_object_or_404(ContactBlock, pk=pk, lifted_at__isnull=True)
    patient = get_visible_patient(request.user, block.patient_id)
    policy.lift_block(block)
    audit.record(
        AuditAction.CHANGE_PATIENT,
        user=request.user,
        patient=patient,
        obj=block,
        detail={"contact_block_lifted": block.kind, "channel": block.channel},
        request=request,
    )
    messages.success(request, _("The block was lifted; the patient may be contacted again."))
    return redirect(f"/patients/{patient.pk}/#flags")
