"""Forms for patient master data, contacts, flags and the blocked-numbers list.

Phone and ID numbers are checked with ``core.formats``; a bad value is reported with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import User
from careloop.accounts.queries import sees_all_departments, visible_departments
from careloop.core.formats import id_birth_date, id_sex, normalize_id_number, normalize_phone
from careloop.patients.choices import BlockKind, Relation, Sex
from careloop.patients.models import Patient

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def clean_phone_value(raw: str) -> str:
    """The normalised phone number or a ValidationError a user can act on."""
    try:
        return normalize_phone(raw)
    except ValueError as exc:
        raise forms.ValidationError(
            _(
                "Not a valid phone number. Enter an 11-digit mobile number or a landline "
                "with its area code, e.g. 010-12345678."
            ),
            code="phone",
        ) from exc


_ID_REASONS = {
    "18 characters": _("An ID number has 18 characters: 17 digits and a digit or X."),
    "birth date": _("The ID number contains an impossible birth date."),
    "check digit": _("The ID number's check digit is wrong; please check for a typo."),
}


def clean_id_value(raw: str) -> str:
    try:
        return normalize_id_number(raw)
    except ValueError as exc:
        reason = next((msg for key, msg in _ID_REASONS.items() if key in str(exc)), None)
        raise forms.ValidationError(
            reason or _("Not a valid ID number."), code="id_number"
        ) from exc


class PatientForm(forms.ModelForm):
    """Master data of a patient (F1.1). Flags and contacts have their own forms."""

    tags_text = forms.CharField(
        label=_("Tags"),
        required=False,
        help_text=_("Separate tags with commas."),
    )
    custom_text = forms.CharField(
        label=_("Custom fields"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line as name: value."),
    )

    class Meta:
        model = Patient
        fields = [
            "name",
            "sex",
            "birth_date",
            "id_number",
            "phone",
            "address",
            "card_no",
            "record_no",
            "vip_level",
            "registered_department",
        ]
        widgets = {"birth_date": DATE_INPUT}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        department = self.fields["registered_department"]
        department.queryset = visible_departments(user)  # type: ignore[attr-defined]
        # Staff of a department must register the patient somewhere they can see it again.
        department.required = not sees_all_departments(user)
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(self.instance.tags or [])
            self.fields["custom_text"].initial = "\n".join(
                f"{k}: {v}" for k, v in (self.instance.custom_fields or {}).items()
            )

    def clean_phone(self) -> str:
        raw = self.cleaned_data.get("phone", "")
        return clean_phone_value(raw) if raw else ""

    def clean_id_number(self) -> str:
        raw = self.cleaned_data.get("id_number", "")
        return clean_id_value(raw) if raw else ""

    def clean_birth_date(self) -> dt.date | None:
        birth = self.cleaned_data.get("birth_date")
        if birth and birth > timezone.localdate():
            raise forms.ValidationError(_("The birth date is in the future."))
        return birth

    def clean_tags_text(self) -> list[str]:
        text = self.cleaned_data.get("tags_text", "")
        tags = [t.strip() for t in re.split(r"[,，、]", text) if t.strip()]
        return list(dict.fromkeys(tags))

    def clean_custom_text(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data.get("custom_text", "").splitlines(), 1):
            if not line.strip():
                continue
            parts = re.split(r"[:：]", line, maxsplit=1)
            if len(parts) != 2 or not parts[0].strip():
                raise forms.ValidationError(
                    _("Line %(number)d is not of the form name: value."),
                    params={"number": number},
                )
            fields[parts[0].strip()] = parts[1].strip()
        return fields

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        id_number = data.get("id_number")
        if id_number:
            # The ID number carries the birth date and sex; fill them in or catch a mismatch.
            born = id_birth_date(id_number)
            if not data.get("birth_date"):
                data["birth_date"] = born
            elif data["birth_date"] != born:
                self.add_error("birth_date", _("The birth date does not match the ID number."))
            if data.get("sex") in (None, "", Sex.UNKNOWN):
                data["sex"] = id_sex(id_number)
        return data

    def save(self, commit: bool = True) -> Patient:
        # Saving goes through patients.services.save_patient; this only fills the instance.
        patient = super().save(commit=False)
        patient.tags = self.cleaned_data.get("tags_text", [])
        patient.custom_fields = self.cleaned_data.get("custom_text", {})
        return patient


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=50, required=False)
    relation = forms.ChoiceField(label=_("Relation"), choices=Relation.choices)
    phone = forms.CharField(label=_("Phone"), max_length=30)
    is_primary = forms.BooleanField(label=_("Primary number"), required=False)

    def clean_phone(self) -> str:
        return clean_phone_value(self.cleaned_data["phone"])


class FlagsForm(forms.Form):
    is_deceased = forms.BooleanField(label=_("Deceased"), required=False)
    deceased_on = forms.DateField(label=_("Date of death"), required=False, widget=DATE_INPUT)
    do_not_contact = forms.BooleanField(label=_("Do not contact"), required=False)
    sms_opt_out = forms.BooleanField(label=_("No SMS"), required=False)
    call_opt_out = forms.BooleanField(label=_("No calls"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("is_deceased"):
            died = data.get("deceased_on")
            if not died:
                self.add_error("deceased_on", _("Enter the date of death."))
            elif died > timezone.localdate():
                self.add_error("deceased_on", _("The date of death is in the future."))
        return data


class PhoneBlockForm(forms.Form):
    phone = forms.CharField(label=_("Phone"), max_length=30)
    kind = forms.ChoiceField(label=_("Kind"), choices=BlockKind.choices)
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def clean_phone(self) -> str:
        return clean_phone_value(self.cleaned_data["phone"])
