from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import Department, User
from careloop.accounts.queries import visible_departments
from careloop.alerts.choices import AdviceChannel, Operator, Severity
from careloop.alerts.models import AlertRule
from careloop.surveys import schema


class DateInput(forms.DateInput):
    input_type = "date"


class AlertFilterForm(forms.Form):
    view = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[
            ("active", _("Not closed")),
            ("open", _("Not acknowledged")),
            ("escalated", _("Escalated")),
            ("closed", _("Closed")),
            ("all", _("All")),
        ],
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("Any")), *Severity.choices]
    )
    department: forms.ModelChoiceField[Department] = forms.ModelChoiceField(
        label=_("Department"),
        required=False,
        queryset=Department.objects.none(),
        empty_label=_("Any"),
    )
    patient = forms.IntegerField(label=_("Patient number"), required=False, min_value=1)
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput)
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput)

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]


class AdviseForm(forms.Form):
    text = forms.CharField(
        label=_("Advice for the patient"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    channel = forms.ChoiceField(
        label=_("Passed on by"), choices=AdviceChannel.choices, initial=AdviceChannel.CALL
    )


class CloseForm(forms.Form):
    note = forms.CharField(label=_("Closing note"), required=False, max_length=500)


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    value = forms.JSONField(
        label=_("Threshold"),
        help_text=_('JSON: a number, "text", true / false, or a list for "is one of".'),
    )

    class Meta:
        model = AlertRule
        fields = [
            "questionnaire",
            "question_key",
            "operator",
            "value",
            "severity",
            "message",
            "ack_hours",
            "escalation_hours",
            "is_active",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        questionnaire = data.get("questionnaire")
        key = data.get("question_key")
        if questionnaire is not None and key:
            version = questionnaire.current_version
            keys = set(schema.question_map(version.definition)) if version else set()
            if key not in keys:
                self.add_error(
                    "question_key", _("The questionnaire has no question with this key.")
                )
        value = data.get("value")
        operator = data.get("operator")
        if operator == Operator.IN and not isinstance(value, list):
            self.add_error("value", _('"is one of" needs a list, e.g. ["a", "b"].'))
        if operator in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE) and isinstance(
            value, list | dict | bool
        ):
            self.add_error("value", _("Comparisons need a number or a date."))
        return data
