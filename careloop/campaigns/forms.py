"""Campaign settings and the two list builders (from follow-up tasks, from patients)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import User
from careloop.accounts.queries import visible_departments
from careloop.campaigns.choices import RETRY_CHOICES, CampaignKind
from careloop.campaigns.models import Campaign
from careloop.followup.forms import TaskFilterForm
from careloop.followup.models import PlanStep
from careloop.followup.queries import plans_visible_to
from careloop.patients.filters import PatientFilterForm
from careloop.surveys.models import QuestionnaireVersion

WEEKDAYS = [
    (1, _("Mon")),
    (2, _("Tue")),
    (3, _("Wed")),
    (4, _("Thu")),
    (5, _("Fri")),
    (6, _("Sat")),
    (7, _("Sun")),
]


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", **kwargs)


class QuestionnaireChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.questionnaire.title} v{obj.number}"


def published_versions() -> Any:
    """The current published version of every questionnaire not archived."""
    versions = (
        QuestionnaireVersion.objects.filter(
            published_at__isnull=False, questionnaire__is_archived=False
        )
        .select_related("questionnaire")
        .order_by("questionnaire__title", "-number")
    )
    latest: dict[int, int] = {}
    for version in versions:
        latest.setdefault(version.questionnaire_id, version.pk)
    return versions.filter(pk__in=latest.values())


def overlaps_contact_hours(days: list[int], spans: list[tuple[dt.time, dt.time]]) -> bool:
    """Whether some of the campaign's hours on its days are inside the hospital's contact hours
    (the contact policy applies on top of a campaign's own hours)."""
    from careloop.outreach.policy import current_policy

    for window in current_policy().windows or []:
        opens = dt.time.fromisoformat(str(window["from"]))
        closes = dt.time.fromisoformat(str(window["to"]))
        if not set(days) & set(window.get("days", [])):
            continue
        if any(start < closes and opens < end for start, end in spans):
            return True
    return False


class CampaignForm(forms.ModelForm):
    """What a campaign says or asks, its calling hours, pace and retries."""

    days = forms.TypedMultipleChoiceField(
        label=_("Calling days"),
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        initial=[1, 2, 3, 4, 5],
    )
    morning_from = forms.TimeField(
        label=_("Calling from"), widget=TimeInput(), initial=dt.time(9, 0)
    )
    morning_to = forms.TimeField(label=_("to"), widget=TimeInput(), initial=dt.time(11, 30))
    afternoon_from = forms.TimeField(
        label=_("and from"), widget=TimeInput(), required=False, initial=dt.time(14, 0)
    )
    afternoon_to = forms.TimeField(
        label=_("to"), widget=TimeInput(), required=False, initial=dt.time(17, 0)
    )
    retry_on = forms.MultipleChoiceField(
        label=_("Retry when the result is"),
        choices=RETRY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        initial=["busy", "no_answer", "failed"],
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "kind",
            "department",
            "message",
            "questionnaire",
            "concurrency",
            "calls_per_minute",
            "max_attempts",
            "retry_minutes",
        ]
        field_classes = {"questionnaire": QuestionnaireChoice}
        widgets = {"message": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "message": _(
                "Spoken by text-to-speech. Placeholders: {姓名} full name, {称呼} 张先生/李女士, "
                "{科室} department, {日期} the follow-up date (else today)."
            ),
            "questionnaire": _(
                "Automated questionnaire: asked by keypad. Preview dialling: shown to the nurse "
                "for patients without a follow-up task (a task's own questionnaire comes first)."
            ),
            "concurrency": _("At most this many of the campaign's calls are up at once."),
            "calls_per_minute": _("Pacing: new calls started per minute."),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = visible_departments(user)  # type: ignore[attr-defined]
        self.fields["questionnaire"].queryset = published_versions()  # type: ignore[attr-defined]
        self.fields["questionnaire"].required = False
        instance = self.instance
        if instance.pk:
            windows = instance.windows or []
            if windows:
                self.initial["days"] = windows[0].get("days", [])
                self.initial["morning_from"] = windows[0].get("from")
                self.initial["morning_to"] = windows[0].get("to")
            if len(windows) > 1:
                self.initial["afternoon_from"] = windows[1].get("from")
                self.initial["afternoon_to"] = windows[1].get("to")
            self.initial["retry_on"] = instance.retry_on

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        kind = data.get("kind")
        if kind == CampaignKind.NOTIFICATION and not (data.get("message") or "").strip():
            self.add_error("message", _("A voice notification needs the text to speak."))
        if kind == CampaignKind.QUESTIONNAIRE and not data.get("questionnaire"):
            self.add_error("questionnaire", _("Choose the questionnaire to ask."))
        start, end = data.get("morning_from"), data.get("morning_to")
        if start and end and start >= end:
            self.add_error("morning_to", _("The end is before the start."))
        start2, end2 = data.get("afternoon_from"), data.get("afternoon_to")
        if bool(start2) != bool(end2):
            self.add_error("afternoon_to", _("Give both times of the second window, or neither."))
        elif start2 and end2 and start2 >= end2:
            self.add_error("afternoon_to", _("The end is before the start."))
        if data.get("days") and start and end and not self.errors:
            spans = [(start, end)] + ([(start2, end2)] if start2 and end2 else [])
            if not overlaps_contact_hours(data["days"], spans):
                self.add_error(
                    None,
                    _(
                        "These hours fall outside the hospital's contact hours on every day "
                        "chosen: nobody would be called."
                    ),
                )
        return data

    def save(self, commit: bool = True) -> Campaign:
        campaign: Campaign = super().save(commit=False)
        data = self.cleaned_data
        days = sorted(data["days"])
        windows = [
            {
                "days": days,
                "from": data["morning_from"].strftime("%H:%M"),
                "to": data["morning_to"].strftime("%H:%M"),
            }
        ]
        if data.get("afternoon_from") and data.get("afternoon_to"):
            windows.append(
                {
                    "days": days,
                    "from": data["afternoon_from"].strftime("%H:%M"),
                    "to": data["afternoon_to"].strftime("%H:%M"),
                }
            )
        campaign.windows = windows
        campaign.retry_on = list(data.get("retry_on") or [])
        if campaign.kind != CampaignKind.NOTIFICATION:
            campaign.message = campaign.message.strip()
        if commit:
            campaign.save()
        return campaign


class StepChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.plan.name} · {obj.title}"


class TaskListForm(TaskFilterForm):
    """The workspace's task filters plus the plan step."""

    step = StepChoice(label=_("Step"), required=False, queryset=PlanStep.objects.none())

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["step"].queryset = (  # type: ignore[attr-defined]
            PlanStep.objects.filter(plan__in=plans_visible_to(user))
            .select_related("plan")
            .order_by("plan__name", "order")
        )


class PatientListForm(PatientFilterForm):
    """The patient list's filters plus a tag."""

    tag = forms.CharField(label=_("Tag"), required=False, max_length=50)


class SkipForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)
