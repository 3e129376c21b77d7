"""Reads of questionnaires and responses, and their gates.

Questionnaires are templates without personal data: everyone allowed to view them sees all of
them. Editing is limited to the questionnaire's department (hospital-wide questionnaires to
hospital-wide staff). Responses are patient data: visible only with the patient
(``patients.queries.visible_to``).
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from careloop.accounts.models import User
from careloop.accounts.queries import department_ids
from careloop.patients.queries import visible_to as patients_visible_to
from careloop.surveys.models import Questionnaire, QuestionnaireVersion, Response


def questionnaires_visible_to(user: User) -> QuerySet[Questionnaire]:
    return Questionnaire.objects.select_related("department")


def editable_by(user: User) -> QuerySet[Questionnaire]:
    """Questionnaires ``user`` may design: those of their departments (all for hospital-wide staff)."""
    ids = department_ids(user)
    questionnaires = Questionnaire.objects.select_related("department")
    if ids is None:
        return questionnaires
    return questionnaires.filter(department_id__in=ids)


def get_questionnaire(queryset: QuerySet[Questionnaire], pk: int) -> Questionnaire:
    try:
        return queryset.get(pk=pk)
    except Questionnaire.DoesNotExist as exc:
        raise Http404("No such questionnaire") from exc


def questionnaire_list(
    user: User, *, archived: bool = False, q: str = ""
) -> QuerySet[Questionnaire]:
    """The list screen's rows, with the current version number and response counts."""
    rows = questionnaires_visible_to(user).filter(is_archived=archived)
    if q:
        rows = rows.filter(Q(title__icontains=q) | Q(code__icontains=q))
    return rows.annotate(
        published_versions=Count(
            "versions", filter=Q(versions__published_at__isnull=False), distinct=True
        ),
        response_count=Count("versions__responses", distinct=True),
    )


def draft_of(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    return questionnaire.versions.filter(published_at__isnull=True).first()


def latest_version(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    return questionnaire.versions.order_by("-number").first()


def versions_with_counts(questionnaire: Questionnaire) -> QuerySet[QuestionnaireVersion]:
    """All versions, newest first, each with ``response_count`` (counts are not personal data)."""
    return (
        questionnaire.versions.select_related("created_by")
        .annotate(response_count=Count("responses"))
        .order_by("-number")
    )


def responses_visible_to(user: User) -> QuerySet[Response]:
    return Response.objects.filter(patient__in=patients_visible_to(user)).select_related(
        "version__questionnaire", "patient", "submitted_by"
    )


def get_visible_response(user: User, pk: int) -> Response:
    """The response, or 404 when it does not exist *or* its patient is of another department."""
    try:
        return responses_visible_to(user).get(pk=pk)
    except (Response.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such response") from exc


def recent_responses(
    user: User, questionnaire: Questionnaire, *, limit: int = 20
) -> list[Response]:
    return list(
        responses_visible_to(user)
        .filter(version__questionnaire=questionnaire)
        .order_by("-submitted_at")[:limit]
    )
