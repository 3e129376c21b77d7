"""Forms of the questionnaire screens, and reading a filled questionnaire from a POST."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids, visible_departments
from careloop.surveys.choices import QuestionType
from careloop.surveys.models import Questionnaire
from careloop.surveys.schema import questions

FIELD_PREFIX = "q_"


def answers_from_post(definition: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The raw answers of a POST whose inputs are named ``q_<key>`` (see surveys/_fill.html).

    Every question of the definition gets an entry (None or [] when not answered) so that
    ``schema.clean_answers`` can report missing required answers.
    """
    answers: dict[str, Any] = {}
    for question in questions(definition):
        name = FIELD_PREFIX + question["key"]
        if question.get("type") == QuestionType.MULTIPLE:
            if hasattr(data, "getlist"):
                answers[question["key"]] = data.getlist(name)
            else:
                value = data.get(name)
                answers[question["key"]] = (
                    list(value)
                    if isinstance(value, list | tuple)
                    else []
                    if value is None
                    else [value]
                )
        else:
            answers[question["key"]] = data.get(name)
    return answers


class QuestionnaireCreateForm(forms.ModelForm):
    """A new questionnaire; its questions are added in the designer afterwards."""

    class Meta:
        model = Questionnaire
        fields = ["title", "code", "description", "department"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "code": _("Letters, digits and hyphens; left empty, it is made from the title.")
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False
        departments = self.fields["department"]
        departments.queryset = visible_departments(user).filter(is_active=True)  # type: ignore[attr-defined]
        # Only hospital-wide staff may leave the department empty (a hospital-wide questionnaire).
        departments.required = department_ids(user) is not None
        departments.empty_label = _("Hospital-wide")  # type: ignore[attr-defined]


class DesignerForm(forms.Form):
    """Title, description and the draft's definition as JSON (kept in sync by surveys/designer.js)."""

    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    definition = forms.CharField(
        label=_("Questions (JSON)"),
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
    )

    def clean_definition(self) -> dict[str, Any]:
        try:
            definition = json.loads(self.cleaned_data["definition"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                _("The questions are not valid JSON (line %(line)s, column %(column)s)."),
                params={"line": exc.lineno, "column": exc.colno},
            ) from exc
        if not isinstance(definition, dict):
            raise forms.ValidationError(_("The questions must be a JSON object."))
        return definition
