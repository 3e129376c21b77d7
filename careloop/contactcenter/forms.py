"""Forms of the contact center."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import Department, User
from careloop.accounts.queries import visible_departments
from careloop.contactcenter.choices import PhoneKind


class ClickToCallForm(forms.Form):
    patient = forms.IntegerField(min_value=1)
    task = forms.IntegerField(min_value=1, required=False)
    # "patient" for the patient's own number, else the id of one of the patient's contacts
    number = forms.CharField(max_length=20, required=False)


class AgentPhoneForm(forms.Form):
    kind = forms.ChoiceField(label=_("kind"), choices=PhoneKind.choices)
    uri = forms.CharField(
        label=_("SIP URI"), max_length=200, required=False, help_text=_("Only for a fixed SIP URI.")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == PhoneKind.FIXED and not str(data.get("uri", "")).startswith(
            ("sip:", "sips:")
        ):
            self.add_error("uri", _("A fixed phone needs a SIP URI."))
        return data


class _DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class RatingReportForm(forms.Form):
    """Filters of the satisfaction report: a period (hospital dates) and a department."""

    date_from = forms.DateField(label=_("From"), required=False, widget=_DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=_DateInput())
    department = forms.ModelChoiceField(
        label=_("Department"),
        required=False,
        queryset=Department.objects.none(),
        empty_label=_("All departments"),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end of the period is before its start."))
        return data
