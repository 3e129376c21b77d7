"""The filters of the patient list (F1.6); bad input is shown next to the field, never ignored."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import User
from careloop.accounts.queries import visible_departments
from careloop.patients.choices import EncounterKind

FLAG_CHOICES = [
    ("deceased", _("Deceased")),
    ("do_not_contact", _("Do not contact")),
    ("sms_opt_out", _("No SMS")),
    ("call_opt_out", _("No calls")),
    ("vip", _("VIP")),
]


class PatientFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "placeholder": _(
                    "Name, initials, phone or last 4 digits, card, record, ID, diagnosis"
                ),
                "type": "search",
            }
        ),
    )
    department: forms.ModelChoiceField = forms.ModelChoiceField(
        label=_("Department"), required=False, queryset=None, empty_label=_("All departments")
    )
    kind = forms.ChoiceField(
        label=_("Encounter"),
        required=False,
        choices=[("", _("Any encounter")), *EncounterKind.choices],
    )
    discharged_from = forms.DateField(
        label=_("Discharged from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    discharged_to = forms.DateField(
        label=_("Discharged to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    flags = forms.MultipleChoiceField(
        label=_("Flags"), required=False, choices=FLAG_CHOICES, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("discharged_from"), data.get("discharged_to")
        if start and end and start > end:
            self.add_error("discharged_to", _("The end date is before the start date."))
        return data
