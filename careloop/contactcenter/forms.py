"""Forms of the contact center."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

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
