"""Every state change of questionnaires and responses (F3.1).

A questionnaire has at most one draft version, which the designer edits freely. Publishing freezes
it; the next edit starts a new draft numbered one higher, copied from the latest version. Responses
point at the version they were given on, so republishing never changes an old answer sheet.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from pypinyin import lazy_pinyin

from careloop.accounts.models import Department, User
from careloop.patients.models import Patient
from careloop.surveys import schema
from careloop.surveys.choices import ResponseChannel
from careloop.surveys.models import Questionnaire, QuestionnaireVersion, Response


class SurveyError(Exception):
    """A questionnaire operation refused for a reason the user can read."""


class DefinitionError(SurveyError):
    """A definition that does not validate; ``issues`` holds the problems (schema.DefinitionIssue)."""

    def __init__(self, issues: list[schema.DefinitionIssue]):
        super().__init__("; ".join(str(issue) for issue in issues))
        self.issues = issues


def _check(definition: Any) -> None:
    issues = schema.definition_issues(definition)
    if issues:
        raise DefinitionError(issues)


def _code_from_title(title: str) -> str:
    base = slugify("-".join(lazy_pinyin(title)))[:40].strip("-") or "questionnaire"
    for n in itertools.count(1):
        code = base if n == 1 else f"{base}-{n}"
        if not Questionnaire.objects.filter(code=code).exists():
            return code
    raise AssertionError("unreachable")


def create_questionnaire(
    *,
    title: str,
    code: str = "",
    description: str = "",
    department: Department | None = None,
    definition: dict[str, Any] | None = None,
    acting_user: User | None,
) -> Questionnaire:
    """A new questionnaire with draft version 1 (empty unless ``definition`` is given).

    ``code`` defaults to the pinyin of the title. A given definition must validate.
    """
    if definition is not None:
        _check(definition)
    with transaction.atomic():
        try:
            with transaction.atomic():
                questionnaire = Questionnaire.objects.create(
                    code=code or _code_from_title(title),
                    title=title,
                    description=description,
                    department=department,
                    created_by=acting_user,
                )
        except IntegrityError as exc:
            raise SurveyError(_("The code %(code)s is already used.") % {"code": code}) from exc
        QuestionnaireVersion.objects.create(
            questionnaire=questionnaire,
            number=1,
            definition=definition if definition is not None else {"questions": []},
            created_by=acting_user,
        )
    return questionnaire


def _lock(questionnaire: Questionnaire) -> Questionnaire:
    locked = Questionnaire.objects.select_for_update().get(pk=questionnaire.pk)
    if locked.is_archived:
        raise SurveyError(_("This questionnaire is archived; restore it before editing."))
    return locked


def save_draft(
    questionnaire: Questionnaire,
    *,
    definition: dict[str, Any],
    acting_user: User | None,
    title: str | None = None,
    description: str | None = None,
) -> QuestionnaireVersion:
    """Store ``definition`` in the questionnaire's draft, creating the draft (latest number + 1)
    when every version is published. Title and description change too when given.
    Raises DefinitionError when the definition does not validate; nothing is saved then.
    """
    _check(definition)
    with transaction.atomic():
        locked = _lock(questionnaire)
        if title is not None or description is not None:
            locked.title = title if title is not None else locked.title
            locked.description = description if description is not None else locked.description
            locked.save(update_fields=["title", "description"])
            questionnaire.title, questionnaire.description = locked.title, locked.description
        draft = locked.versions.filter(published_at__isnull=True).first()
        if draft is None:
            latest = locked.versions.aggregate(n=Max("number"))["n"] or 0
            return QuestionnaireVersion.objects.create(
                questionnaire=locked,
                number=latest + 1,
                definition=definition,
                created_by=acting_user,
            )
        draft.definition = definition
        draft.save(update_fields=["definition"])
        return draft


def start_draft(questionnaire: Questionnaire, *, acting_user: User | None) -> QuestionnaireVersion:
    """The draft version, creating it from a copy of the latest version when there is none."""
    with transaction.atomic():
        locked = _lock(questionnaire)
        draft = locked.versions.filter(published_at__isnull=True).first()
        if draft is not None:
            return draft
        latest = locked.versions.order_by("-number").first()
        return QuestionnaireVersion.objects.create(
            questionnaire=locked,
            number=(latest.number if latest else 0) + 1,
            definition=latest.definition if latest else {"questions": []},
            created_by=acting_user,
        )


def publish(version: QuestionnaireVersion, *, acting_user: User | None) -> QuestionnaireVersion:
    """Validate and freeze a draft; from now on it is what patients answer.

    The stored definition gets its defaults made explicit (schema.normalize_definition).
    """
    with transaction.atomic():
        _lock(version.questionnaire)
        locked = QuestionnaireVersion.objects.select_for_update().get(pk=version.pk)
        if locked.published_at is not None:
            raise SurveyError(
                _("Version %(number)s is already published.") % {"number": locked.number}
            )
        _check(locked.definition)
        locked.definition = schema.normalize_definition(locked.definition)
        locked.published_at = timezone.now()
        locked.save(update_fields=["definition", "published_at"])
    version.definition, version.published_at = locked.definition, locked.published_at
    return version


def save_and_publish(
    questionnaire: Questionnaire,
    *,
    definition: dict[str, Any],
    acting_user: User | None,
    title: str | None = None,
    description: str | None = None,
) -> QuestionnaireVersion:
    """The designer's "Publish" button: save the draft and publish it in one transaction."""
    with transaction.atomic():
        draft = save_draft(
            questionnaire,
            definition=definition,
            acting_user=acting_user,
            title=title,
            description=description,
        )
        return publish(draft, acting_user=acting_user)


def discard_draft(questionnaire: Questionnaire, *, acting_user: User | None) -> bool:
    """Delete the draft version unless it is the only version; True when one was deleted."""
    with transaction.atomic():
        locked = _lock(questionnaire)
        draft = locked.versions.filter(published_at__isnull=True).first()
        if draft is None or not locked.versions.filter(published_at__isnull=False).exists():
            return False
        draft.delete()
        return True


def archive(questionnaire: Questionnaire, *, acting_user: User | None) -> Questionnaire:
    """Hide a questionnaire from the list and from new plans. Published versions stay answerable,
    so follow-up tasks already scheduled with it still record their responses."""
    with transaction.atomic():
        locked = Questionnaire.objects.select_for_update().get(pk=questionnaire.pk)
        locked.is_archived = True
        locked.save(update_fields=["is_archived"])
    questionnaire.is_archived = True
    return questionnaire


def restore(questionnaire: Questionnaire, *, acting_user: User | None) -> Questionnaire:
    """Undo ``archive``."""
    with transaction.atomic():
        locked = Questionnaire.objects.select_for_update().get(pk=questionnaire.pk)
        locked.is_archived = False
        locked.save(update_fields=["is_archived"])
    questionnaire.is_archived = False
    return questionnaire


def submit_response(
    version: QuestionnaireVersion,
    *,
    patient: Patient,
    answers: dict[str, Any],
    channel: str,
    acting_user: User | None,
) -> Response:
    """Clean, score and save a patient's answers to a published version.

    Raises schema.AnswerError (question key → message) for bad answers and SurveyError for an
    unpublished version or an unknown channel.
    """
    if version.published_at is None:
        raise SurveyError(_("Only a published questionnaire version can be answered."))
    if channel not in ResponseChannel.values:
        raise SurveyError(_("Unknown response channel %(channel)s.") % {"channel": channel})
    cleaned = schema.clean_answers(version.definition, answers)
    with transaction.atomic():
        return Response.objects.create(
            version=version,
            patient=patient,
            channel=channel,
            answers=cleaned,
            score=schema.score(version.definition, cleaned),
            submitted_by=acting_user
            if acting_user is not None and acting_user.is_authenticated
            else None,
        )
