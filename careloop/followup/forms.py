"""Forms of the follow-up screens: plans and steps, teams, enrolment, outcomes, filters."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.db.models import Q
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import Department, User
from careloop.accounts.queries import department_ids, visible_departments
from careloop.followup import queries, services
from careloop.followup.choices import Channel, Outcome, TaskStatus
from careloop.followup.models import Plan, PlanStep, Team
from careloop.patients.models import Encounter, Patient
from careloop.surveys.models import Questionnaire

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*$")


def _split_codes(text: str) -> list[str]:
    return [part.strip().upper() for part in re.split(r"[\s,，;；、]+", text or "") if part.strip()]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


# --- plans ---------------------------------------------------------------------------------------


class PlanForm(forms.ModelForm):
    """A plan and its enrolment rules; the rules' fields are stored in ``Plan.rules``."""

    diagnosis_prefixes = forms.CharField(
        label=_("Diagnosis code prefixes (ICD-10)"),
        required=False,
        help_text=_("Separated by commas or spaces, e.g. I21, I25. Empty: any diagnosis."),
    )
    surgery_codes = forms.CharField(
        label=_("Operation codes"),
        required=False,
        help_text=_("Code prefixes, e.g. 36.06, 81.5. Empty: no operation required."),
    )
    min_age = forms.IntegerField(label=_("Minimum age"), required=False, min_value=0, max_value=150)
    max_age = forms.IntegerField(label=_("Maximum age"), required=False, min_value=0, max_value=150)

    class Meta:
        model = Plan
        fields = [
            "name",
            "department",
            "trigger",
            "auto_enrol",
            "is_active",
            "team",
            "assignment",
            "max_attempts",
            "retry_interval_hours",
            "script",
        ]
        widgets = {"script": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user).filter(is_active=True)  # type: ignore[attr-defined]
        self.fields["team"].queryset = queries.teams_visible_to(user)  # type: ignore[attr-defined]
        self.fields["max_attempts"].widget.attrs["min"] = 1
        rules = self.instance.rules or {}
        self.initial.setdefault(
            "diagnosis_prefixes", ", ".join(rules.get("diagnosis_prefixes", []))
        )
        self.initial.setdefault("surgery_codes", ", ".join(rules.get("surgery_codes", [])))
        self.initial.setdefault("min_age", rules.get("min_age"))
        self.initial.setdefault("max_age", rules.get("max_age"))

    def _codes(self, name: str) -> list[str]:
        codes = _split_codes(self.cleaned_data.get(name, ""))
        bad = [code for code in codes if not _CODE.match(code)]
        if bad:
            raise forms.ValidationError(
                _("Not a valid code: %(codes)s"), params={"codes": ", ".join(bad)}
            )
        return codes

    def clean_diagnosis_prefixes(self) -> list[str]:
        return self._codes("diagnosis_prefixes")

    def clean_surgery_codes(self) -> list[str]:
        return self._codes("surgery_codes")

    def clean_max_attempts(self) -> int:
        value = self.cleaned_data["max_attempts"]
        if value < 1:
            raise forms.ValidationError(_("At least one attempt."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        low, high = data.get("min_age"), data.get("max_age")
        if low is not None and high is not None and low > high:
            self.add_error("max_age", _("The maximum age is below the minimum age."))
        return data

    def save(self, commit: bool = True) -> Plan:
        plan = super().save(commit=False)
        rules: dict[str, Any] = {}
        data = self.cleaned_data
        if data.get("diagnosis_prefixes"):
            rules["diagnosis_prefixes"] = data["diagnosis_prefixes"]
        if data.get("surgery_codes"):
            rules["surgery_codes"] = data["surgery_codes"]
        for key in ("min_age", "max_age"):
            if data.get(key) is not None:
                rules[key] = data[key]
        plan.rules = rules
        if commit:
            plan.save()
        return plan


class PlanStepForm(forms.ModelForm):
    """One step; the questionnaires offered are those of the user's departments and hospital-wide
    ones that are not archived (plus the one already chosen)."""

    class Meta:
        model = PlanStep
        fields = [
            "title",
            "day_offset",
            "window_before",
            "window_after",
            "channel",
            "questionnaire",
            "script",
        ]
        widgets = {
            "script": forms.Textarea(attrs={"rows": 2}),
            "day_offset": forms.NumberInput(attrs={"min": 0, "class": "narrow"}),
            "window_before": forms.NumberInput(attrs={"min": 0, "class": "narrow"}),
            "window_after": forms.NumberInput(attrs={"min": 0, "class": "narrow"}),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        ids = department_ids(user)
        questionnaires = Questionnaire.objects.filter(is_archived=False)
        if ids is not None:
            questionnaires = questionnaires.filter(
                Q(department__isnull=True) | Q(department_id__in=ids)
            )
        if self.instance.questionnaire_id:
            questionnaires = questionnaires | Questionnaire.objects.filter(
                pk=self.instance.questionnaire_id
            )
        self.fields["questionnaire"].queryset = questionnaires.distinct()  # type: ignore[attr-defined]


class BasePlanStepFormSet(BaseInlineFormSet):
    """Steps of a plan. A step that already has tasks cannot be deleted (they keep their step)."""

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, form_kwargs={"user": user}, **kwargs)

    def clean(self) -> None:
        super().clean()
        kept = 0
        protected = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and form.cleaned_data.get("DELETE"):
                if form.instance.pk and form.instance.tasks.exists():
                    protected.append(form.instance.title)
                continue
            kept += 1
        if protected:
            # A deleted form's own errors are not checked by is_valid(): report on the formset.
            raise forms.ValidationError(
                _("These steps already have follow-up tasks and cannot be deleted: %(steps)s"),
                params={"steps": ", ".join(protected)},
            )
        if kept == 0:
            raise forms.ValidationError(_("A plan needs at least one step."))


PlanStepFormSet = inlineformset_factory(
    Plan,
    PlanStep,
    form=PlanStepForm,
    formset=BasePlanStepFormSet,
    extra=1,
    can_delete=True,
)


class TeamForm(forms.ModelForm):
    """A team: members must be able to see the team's department (they will get its tasks)."""

    class Meta:
        model = Team
        fields = ["name", "department", "supervisor", "members"]
        widgets = {"members": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user).filter(is_active=True)  # type: ignore[attr-defined]
        staff = queries.department_staff(user)
        self.fields["supervisor"].queryset = staff  # type: ignore[attr-defined]
        self.fields["members"].queryset = queries.assignable_staff(user=user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        department = data.get("department")
        if department is not None:
            outsiders = [
                str(member)
                for member in data.get("members") or []
                if not services.can_work_in(member, department.pk)
            ]
            if outsiders:
                self.add_error(
                    "members",
                    _("Not staff of %(department)s: %(names)s")
                    % {"department": department, "names": ", ".join(outsiders)},
                )
        return data


# --- enrolment and outcomes ----------------------------------------------------------------------


class EnrolForm(forms.Form):
    """Manual enrolment of one patient (F2.2)."""

    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.none())
    encounter = forms.ModelChoiceField(
        label=_("Encounter"),
        queryset=Encounter.objects.none(),
        required=False,
        help_text=_("The stay or visit the follow-up is about; empty for none."),
    )
    anchor_date = forms.DateField(
        label=_("Anchor date"),
        required=False,
        widget=DateInput(),
        help_text=_("Day 0 of the plan. Empty: taken from the encounter, else today."),
    )

    def __init__(self, *args: Any, user: User, patient: Patient, today: dt.date, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["plan"].queryset = queries.plans_visible_to(user).filter(is_active=True)  # type: ignore[attr-defined]
        self.fields["encounter"].queryset = (  # type: ignore[attr-defined]
            patient.encounters.select_related("department").order_by("-started_at")
        )
        self.fields["encounter"].label_from_instance = _encounter_label  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        plan, encounter = data.get("plan"), data.get("encounter")
        if plan is not None and not data.get("anchor_date"):
            anchor = services.anchor_for(plan, encounter)
            if anchor is None and encounter is not None:
                self.add_error(
                    "anchor_date",
                    _(
                        "This encounter gives no date for the plan's trigger; enter the anchor date."
                    ),
                )
            data["anchor_date"] = anchor or self.today
        return data


def _encounter_label(encounter: Encounter) -> str:
    when = encounter.discharged_at or encounter.started_at
    date = timezone.localdate(when).isoformat() if when else ""
    return f"{encounter.encounter_no} · {encounter.department} · {encounter.get_kind_display()} · {date}"


class OutcomeForm(forms.Form):
    """The outcome of one contact attempt; the questionnaire answers come from ``q_*`` inputs."""

    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=Outcome.choices, widget=forms.RadioSelect
    )
    callback_at = forms.DateTimeField(
        label=_("Call back at"),
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        if data.get("outcome") == Outcome.CALL_BACK and not data.get("callback_at"):
            self.add_error("callback_at", _("Give the time to call back."))
        return data


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assign to"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody (back to the pool)"),
    )

    def __init__(self, *args: Any, department_id: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = queries.assignable_staff(department_id)  # type: ignore[attr-defined]


class WithdrawForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


# --- filters -------------------------------------------------------------------------------------


def _status_choices() -> list[tuple[str, Any]]:
    return [
        ("", _("Any status")),
        ("open", _("Open (pending, due or overdue)")),
        ("failures", _("Failures (unreached or lost)")),
        *TaskStatus.choices,
    ]


class TaskFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=_status_choices)
    plan = forms.ModelChoiceField(label=_("Plan"), required=False, queryset=Plan.objects.none())
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    department = forms.ModelChoiceField(
        label=_("Department"), required=False, queryset=Department.objects.none()
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("Any channel")), *Channel.choices]
    )
    date_from = forms.DateField(label=_("Target date from"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("Target date to"), required=False, widget=DateInput())

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = queries.plans_visible_to(user)  # type: ignore[attr-defined]
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]
        self.fields["assignee"].choices = [  # type: ignore[attr-defined]
            ("", _("Anyone")),
            ("none", _("Unassigned (pool)")),
            *((str(u.pk), str(u)) for u in queries.assignable_staff(user=user)),
        ]


class FiguresForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput())
    department = forms.ModelChoiceField(
        label=_("Department"), required=False, queryset=Department.objects.none()
    )
    plan = forms.ModelChoiceField(label=_("Plan"), required=False, queryset=Plan.objects.none())
    nurse = forms.ModelChoiceField(label=_("Nurse"), required=False, queryset=User.objects.none())

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]
        self.fields["plan"].queryset = queries.plans_visible_to(user)  # type: ignore[attr-defined]
        self.fields["nurse"].queryset = queries.assignable_staff(user=user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end of the period is before its start."))
        return data
