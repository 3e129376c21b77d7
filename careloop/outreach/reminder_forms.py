"""Forms of the reminder screens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.outreach.choices import ReminderKind, ReminderStatus
from careloop.outreach.reminders import MAX_MEDICATION_DAYS, REEXAM_NOTE
from careloop.patients.models import Medication


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class MedicationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Medication) -> str:
        return " ".join(part for part in (obj.drug, obj.dose, obj.frequency) if part)


class ReminderForm(forms.Form):
    """A reminder added by a nurse on the patient page: re-examination or exam / vaccination with
    time and place, or a medication reminder called at a given time."""

    kind = forms.ChoiceField(
        label=_("Reminder"),
        choices=[
            (ReminderKind.REEXAM, ReminderKind.REEXAM.label),
            (ReminderKind.EXAM, ReminderKind.EXAM.label),
            (ReminderKind.MEDICATION, ReminderKind.MEDICATION.label),
        ],
    )
    item = forms.CharField(
        label=_("What (exam or vaccine)"),
        max_length=50,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": _("e.g. annual check-up, 2nd hepatitis B dose")}
        ),
    )
    event_at = forms.DateTimeField(
        label=_("Appointment time"), required=False, widget=DateTimeLocalInput()
    )
    place = forms.CharField(label=_("Place"), max_length=200, required=False)
    note = forms.CharField(label=_("What to bring / note"), max_length=100, required=False)
    medication = MedicationChoiceField(
        label=_("Medication"), queryset=Medication.objects.none(), required=False
    )
    days = forms.IntegerField(
        label=_("Every day for (days)"),
        min_value=1,
        max_value=MAX_MEDICATION_DAYS,
        initial=1,
        required=False,
        help_text=_("Medication reminders: called at the same time each day."),
    )
    due_at = forms.DateTimeField(
        label=_("Call at"),
        required=False,
        help_text=_("Empty: the day before the appointment at 10:00."),
        widget=DateTimeLocalInput(),
    )

    def __init__(self, *args: Any, patient: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].initial = REEXAM_NOTE
        if patient is not None:
            self.fields["medication"].queryset = Medication.objects.filter(
                encounter__patient=patient
            ).order_by("-encounter__started_at", "pk")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind == ReminderKind.MEDICATION:
            if not data.get("medication"):
                self.add_error("medication", _("Choose the medication."))
            if not data.get("due_at"):
                self.add_error("due_at", _("Say when to call."))
        elif kind in (ReminderKind.REEXAM, ReminderKind.EXAM):
            if not data.get("event_at"):
                self.add_error("event_at", _("Give the appointment time."))
            if not (data.get("place") or "").strip():
                self.add_error("place", _("Say where the patient should go."))
        return data


class ReminderFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("", _("All kinds")), *ReminderKind.choices], required=False
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("All statuses")), *ReminderStatus.choices],
        required=False,
    )
    date_from = forms.DateField(
        label=_("Due from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Due until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The first day is after the last day."))
        return data


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
