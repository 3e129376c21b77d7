"""Questionnaire screens (F3.1): parse → gate → form or one service call → render or redirect."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.audit import services as audit
from careloop.audit.models import AuditAction
from careloop.surveys import queries, schema, services
from careloop.surveys.choices import QuestionType
from careloop.surveys.forms import DesignerForm, QuestionnaireCreateForm, answers_from_post
from careloop.surveys.models import Questionnaire, QuestionnaireVersion


def _can_edit(user: Any, questionnaire: Questionnaire) -> bool:
    return (
        user.has_perm("surveys.change_questionnaire")
        and queries.editable_by(user).filter(pk=questionnaire.pk).exists()
    )


@permission_required("surveys.view_questionnaire")
def questionnaire_list(request: AuthedRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    q = request.GET.get("q", "").strip()
    rows = queries.questionnaire_list(request.user, archived=archived, q=q)
    return render(request, "surveys/list.html", {"rows": rows, "archived": archived, "q": q})


@permission_required("surveys.add_questionnaire")
def questionnaire_create(request: AuthedRequest) -> HttpResponse:
    form = QuestionnaireCreateForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            questionnaire = services.create_questionnaire(
                title=form.cleaned_data["title"],
                code=form.cleaned_data["code"] or "",
                description=form.cleaned_data["description"],
                department=form.cleaned_data["department"],
                acting_user=request.user,
            )
        except services.SurveyError as exc:
            form.add_error("code", str(exc))
        else:
            messages.success(request, _("Questionnaire created. Add its questions."))
            return redirect("surveys:edit", pk=questionnaire.pk)
    return render(request, "surveys/create.html", {"form": form})


@permission_required("surveys.view_questionnaire")
def questionnaire_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    questionnaire = queries.get_questionnaire(queries.questionnaires_visible_to(request.user), pk)
    context = {
        "questionnaire": questionnaire,
        "current": questionnaire.current_version,
        "draft": queries.draft_of(questionnaire),
        "versions": queries.versions_with_counts(questionnaire),
        "can_edit": _can_edit(request.user, questionnaire),
        "responses": queries.recent_responses(request.user, questionnaire)
        if request.user.has_perm("surveys.view_response")
        else [],
    }
    return render(request, "surveys/detail.html", context)


def _issues_context(issues: list[schema.DefinitionIssue]) -> dict[str, Any]:
    by_index: dict[int, list[str]] = {}
    for issue in issues:
        if issue.index is not None:
            by_index.setdefault(issue.index, []).append(issue.message)
    return {
        "issues": [str(issue) for issue in issues],
        "issues_by_index": {str(k): v for k, v in by_index.items()},
    }


def _designer_texts() -> dict[str, Any]:
    """Labels the designer script shows, translated here so the script has no UI text of its own."""
    return {
        "types": dict(QuestionType.choices),
        "ops": {
            "eq": _("equals"),
            "ne": _("does not equal"),
            "gt": _("greater than"),
            "gte": _("at least"),
            "lt": _("less than"),
            "lte": _("at most"),
            "in": _("is one of"),
        },
        "question": _("Question"),
        "key": _("Key"),
        "type": _("Type"),
        "text": _("Question text"),
        "help": _("Hint"),
        "required": _("Required"),
        "move_up": _("Move up"),
        "move_down": _("Move down"),
        "remove": _("Remove"),
        "add_question": _("Add question"),
        "options": _("Options"),
        "value": _("Value"),
        "label": _("Label"),
        "score": _("Score"),
        "keypad": _("Keypad"),
        "alert": _("Abnormal"),
        "add_option": _("Add option"),
        "min": _("Minimum"),
        "max": _("Maximum"),
        "unit": _("Unit"),
        "integer": _("Whole numbers only"),
        "alert_below": _("Abnormal below"),
        "alert_above": _("Abnormal above"),
        "scale_min": _("Scale from"),
        "scale_max": _("Scale to"),
        "min_label": _("Label of the lowest"),
        "max_label": _("Label of the highest"),
        "scored": _("Counts towards the score"),
        "yes_label": _("Label for yes"),
        "no_label": _("Label for no"),
        "yes_score": _("Score for yes"),
        "no_score": _("Score for no"),
        "alert_on": _("Abnormal answer"),
        "none": _("(none)"),
        "yes": _("Yes"),
        "no": _("No"),
        "max_length": _("Maximum length"),
        "show_if": _("Show only if"),
        "always": _("always shown"),
        "bad_json": _("The JSON cannot be read; fix it or undo your change."),
        "no_questions": _("No questions yet. Add the first one."),
    }


@permission_required("surveys.change_questionnaire")
def questionnaire_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    questionnaire = queries.get_questionnaire(queries.editable_by(request.user), pk)
    if questionnaire.is_archived:
        messages.error(request, _("This questionnaire is archived; restore it before editing."))
        return redirect("surveys:detail", pk=questionnaire.pk)
    draft = queries.draft_of(questionnaire)
    source = draft or queries.latest_version(questionnaire)
    issues: list[schema.DefinitionIssue] = []
    if request.method == "POST":
        form = DesignerForm(request.POST)
        action = request.POST.get("action", "save")
        if action == "discard":
            if services.discard_draft(questionnaire, acting_user=request.user):
                messages.success(request, _("The draft was discarded."))
            return redirect("surveys:detail", pk=questionnaire.pk)
        if form.is_valid():
            service = services.save_and_publish if action == "publish" else services.save_draft
            try:
                version = service(
                    questionnaire,
                    definition=form.cleaned_data["definition"],
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                    acting_user=request.user,
                )
            except services.DefinitionError as exc:
                issues = exc.issues
            except services.SurveyError as exc:
                messages.error(request, str(exc))
            else:
                if action == "publish":
                    messages.success(
                        request, _("Version %(number)s is published.") % {"number": version.number}
                    )
                    return redirect("surveys:detail", pk=questionnaire.pk)
                messages.success(
                    request, _("Draft version %(number)s saved.") % {"number": version.number}
                )
                return redirect("surveys:edit", pk=questionnaire.pk)
    else:
        definition = source.definition if source else {"questions": []}
        form = DesignerForm(
            initial={
                "title": questionnaire.title,
                "description": questionnaire.description,
                "definition": json.dumps(definition, ensure_ascii=False, indent=2),
            }
        )
    context = {
        "questionnaire": questionnaire,
        "form": form,
        "draft": draft,
        "next_number": draft.number if draft else ((source.number if source else 0) + 1),
        "texts": _designer_texts(),
        **_issues_context(issues),
    }
    return render(request, "surveys/edit.html", context)


@require_POST
@permission_required("surveys.change_questionnaire")
def questionnaire_archive(request: AuthedRequest, pk: int) -> HttpResponse:
    questionnaire = queries.get_questionnaire(queries.editable_by(request.user), pk)
    if request.POST.get("action") == "restore":
        services.restore(questionnaire, acting_user=request.user)
        messages.success(request, _("The questionnaire is restored."))
    else:
        services.archive(questionnaire, acting_user=request.user)
        messages.success(request, _("The questionnaire is archived."))
    return redirect("surveys:detail", pk=questionnaire.pk)


def _preview_version(
    request: AuthedRequest, questionnaire: Questionnaire
) -> QuestionnaireVersion | None:
    number = request.GET.get("version") or request.POST.get("version")
    versions = questionnaire.versions.all()
    if number and number.isdigit():
        return versions.filter(number=int(number)).first()
    return queries.draft_of(questionnaire) or questionnaire.current_version


@permission_required("surveys.view_questionnaire")
def questionnaire_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    """Fill a version as a patient would; a POST is validated and scored but never saved."""
    questionnaire = queries.get_questionnaire(queries.questionnaires_visible_to(request.user), pk)
    version = _preview_version(request, questionnaire)
    definition = version.definition if version else {"questions": []}
    context: dict[str, Any] = {
        "questionnaire": questionnaire,
        "version": version,
        "definition": definition,
        "answers": {},
        "errors": {},
        "definition_errors": schema.validate_definition(definition),
    }
    if request.method == "POST" and not context["definition_errors"]:
        raw = answers_from_post(definition, request.POST)
        context["answers"] = raw
        try:
            cleaned = schema.clean_answers(definition, raw)
        except schema.AnswerError as exc:
            context["errors"] = exc.errors
        else:
            context.update(
                valid=True,
                cleaned=cleaned,
                score=schema.score(definition, cleaned),
                alerts=schema.alerts(definition, cleaned),
            )
    if getattr(request, "htmx", False):
        return render(request, "surveys/_preview_form.html", context)
    return render(request, "surveys/preview.html", context)


@permission_required("surveys.view_response")
def response_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    response = queries.get_visible_response(request.user, pk)
    audit.record(
        AuditAction.VIEW_PATIENT,
        user=request.user,
        patient=response.patient,
        obj=response,
        request=request,
    )
    return render(
        request,
        "surveys/response_detail.html",
        {
            "response": response,
            "version": response.version,
            "questionnaire": response.version.questionnaire,
        },
    )
