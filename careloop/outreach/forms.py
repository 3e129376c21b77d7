"""Forms of the contact policy page and of a patient's contact blocks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from careloop.outreach.choices import BlockKind
from careloop.outreach.models import ContactPolicy

_WINDOW = re.compile(r"^\s*([1-7](?:\s*[-,]\s*[1-7])*)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


def _days(spec: str) -> list[int]:
    days: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if "-" in part:
            first, last = (int(x) for x in part.split("-", 1))
            if first > last:
                raise ValueError(part)
            days.update(range(first, last + 1))
        else:
            days.add(int(part))
    return sorted(days)


def _time(text: str) -> str:
    parsed = dt.datetime.strptime(text, "%H:%M").time()
    return parsed.strftime("%H:%M")


def windows_to_text(windows: list[dict[str, Any]]) -> str:
    lines = []
    for window in windows:
        days = window.get("days", [])
        if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
            spec = f"{days[0]}-{days[-1]}"
        else:
            spec = ",".join(str(d) for d in days)
        lines.append(f"{spec} {window['from']}-{window['to']}")
    return "\n".join(lines)


def _dates(text: str, label: str) -> list[str]:
    out = []
    for token in re.split(r"[\s,，;；]+", text.strip()):
        if not token:
            continue
        try:
            out.append(dt.date.fromisoformat(token).isoformat())
        except ValueError as exc:
            raise forms.ValidationError(
                _("%(label)s: “%(value)s” is not a date like 2026-10-01.")
                % {"label": label, "value": token}
            ) from exc
    return sorted(set(out))


class ContactPolicyForm(forms.ModelForm):
    windows_text = forms.CharField(
        label=gettext_lazy("Contact hours"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "One line per period: weekdays (1 = Monday … 7 = Sunday, ranges like 1-5) and the "
            "time, e.g. “1-5 08:30-11:30”. Outside these hours nobody and nothing calls patients."
        ),
    )
    holidays_text = forms.CharField(
        label=gettext_lazy("Holidays"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Dates without any contact, e.g. 2026-10-01 2026-10-02."),
    )
    workdays_text = forms.CharField(
        label=gettext_lazy("Make-up working days"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "Weekend dates worked in exchange (调休); they follow Monday's hours."
        ),
    )

    class Meta:
        model = ContactPolicy
        fields = [
            "max_per_day",
            "max_per_week",
            "automated_attempts",
            "automated_retry_minutes",
            "automated_concurrency",
            "ring_timeout",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        policy = self.instance
        self.fields["windows_text"].initial = windows_to_text(policy.windows or [])
        self.fields["holidays_text"].initial = " ".join(policy.holidays or [])
        self.fields["workdays_text"].initial = " ".join(policy.workdays or [])
        self.order_fields(["windows_text", "holidays_text", "workdays_text"])
        self.fields["max_per_day"].min_value = 1
        self.fields["ring_timeout"].help_text = _("Between 10 and 120 seconds.")

    def clean_windows_text(self) -> list[dict[str, Any]]:
        windows = []
        for number, line in enumerate(self.cleaned_data["windows_text"].splitlines(), start=1):
            if not line.strip():
                continue
            match = _WINDOW.match(line)
            try:
                if match is None:
                    raise ValueError(line)
                days = _days(match.group(1))
                start, end = _time(match.group(2)), _time(match.group(3))
                if start >= end:
                    raise ValueError(line)
            except ValueError as exc:
                raise forms.ValidationError(
                    _(
                        "Line %(n)s (“%(line)s”) is not like “1-5 08:30-11:30” "
                        "(weekdays 1–7, start before end)."
                    )
                    % {"n": number, "line": line.strip()}
                ) from exc
            windows.append({"days": days, "from": start, "to": end})
        if not windows:
            raise forms.ValidationError(_("Give at least one period of contact hours."))
        return windows

    def clean_holidays_text(self) -> list[str]:
        return _dates(self.cleaned_data["holidays_text"], _("Holidays"))

    def clean_workdays_text(self) -> list[str]:
        return _dates(self.cleaned_data["workdays_text"], _("Make-up working days"))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        per_day, per_week = data.get("max_per_day"), data.get("max_per_week")
        if per_day is not None and per_week is not None and per_week < per_day:
            self.add_error("max_per_week", _("The weekly limit cannot be below the daily one."))
        ring = data.get("ring_timeout")
        if ring is not None and not 10 <= ring <= 120:
            self.add_error("ring_timeout", _("Between 10 and 120 seconds."))
        return data

    def save(self, commit: bool = True) -> ContactPolicy:
        policy = super().save(commit=False)
        policy.windows = self.cleaned_data["windows_text"]
        policy.holidays = self.cleaned_data["holidays_text"]
        policy.workdays = self.cleaned_data["workdays_text"]
        if commit:
            policy.save()
        return policy


class BlockForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("Record"),
        choices=[
            (BlockKind.CONSENT_WITHDRAWN.value, BlockKind.CONSENT_WITHDRAWN.label),
            (BlockKind.DO_NOT_CONTACT.value, BlockKind.DO_NOT_CONTACT.label),
        ],
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200, required=False)
