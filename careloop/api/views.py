"""The REST API (/api/v1/): thin views over the same gates and services as the UI."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from careloop.accounts.models import User
from careloop.accounts.services import LoginError, attempt_login
from careloop.api import serializers as s
from careloop.api.authentication import ExpiringTokenAuthentication, issue_token, token_ttl
from careloop.api.pagination import Pagination
from careloop.api.permissions import ActionPermission
from careloop.api.schema import ApiAutoSchema
from careloop.followup.choices import Channel, TaskStatus, Trigger
from careloop.followup.models import Enrollment, FollowUpRecord, Plan, Task
from careloop.followup.queries import (
    STATUS_GROUPS,
    enrollments_visible_to,
    plans_visible_to,
    task_list,
    tasks_visible_to,
    with_current_status,
)
from careloop.followup.services import FollowupError, claim, enrol, record_outcome
from careloop.followup.states import FINAL, local_today
from careloop.patients import services as patient_services
from careloop.patients.choices import EncounterKind
from careloop.patients.filters import PatientFilterForm
from careloop.patients.models import Encounter, Patient
from careloop.patients.queries import (
    FLAG_FILTERS,
    filter_patients,
    visible_to,
    with_last_encounter,
)
from careloop.surveys.models import Questionnaire, QuestionnaireVersion
from careloop.surveys.queries import questionnaires_visible_to
from careloop.surveys.schema import AnswerError
from careloop.surveys.services import SurveyError

ERRORS = {
    400: OpenApiResponse(description="Invalid input; field-level messages."),
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="The user's role lacks the permission."),
    404: OpenApiResponse(description="No such record, or it belongs to another department."),
}


def _user(request: Request) -> User:
    """The authenticated user; the permission classes let no one else through."""
    user = request.user
    assert isinstance(user, User)
    return user


def _form_errors(form: Any) -> dict[str, list[str]]:
    """A Django form's errors in DRF's shape: field → messages."""
    return {
        field: [str(message) for message in messages] for field, messages in form.errors.items()
    }


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class TokenView(APIView):
    """Exchange a user name and password for an API token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token_create",
        summary="Obtain an API token",
        description=(
            "Returns the user's token; send it as `Authorization: Token <token>`. "
            "Wrong passwords count towards the login lockout: after too many failures the "
            "account is locked for a while and every attempt is refused with 403."
        ),
        request=s.TokenRequestSerializer,
        responses={
            200: s.TokenSerializer,
            400: OpenApiResponse(description="Wrong user name or password."),
            403: OpenApiResponse(description="The account is locked after too many failures."),
        },
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = s.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attempt = attempt_login(
            request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if attempt.error == LoginError.LOCKED and attempt.locked_until is not None:
            # The same words as the login page, so the catalogue holds them once.
            minutes = math.ceil((attempt.locked_until - timezone.now()).total_seconds() / 60)
            detail = _(
                "Too many failed log-ins: this account is locked until %(time)s "
                "(%(minutes)d more minutes). Try again later or ask an administrator "
                "to unlock it."
            ) % {
                "time": timezone.localtime(attempt.locked_until).strftime("%H:%M"),
                "minutes": max(1, minutes),
            }
            return Response(
                {"detail": detail, "code": "locked", "locked_until": attempt.locked_until},
                status=status.HTTP_403_FORBIDDEN,
            )
        if attempt.user is None:
            raise serializers.ValidationError(
                {"non_field_errors": [_("Wrong user name or password.")]}
            )
        token = issue_token(attempt.user)
        return Response({"token": token.key, "expires_at": token.created + token_ttl()})

    def get_authenticate_header(self, request: Request) -> str:
        return "Token"  # so a refused revocation is 401, not 403

    @extend_schema(
        operation_id="auth_token_destroy",
        summary="Revoke the API token",
        description="Deletes the token used for this request; the next call with it gets 401.",
        request=None,
        responses={204: None, 401: OpenApiResponse(description="Not authenticated.")},
        tags=["auth"],
    )
    def delete(self, request: Request) -> Response:
        token = ExpiringTokenAuthentication().authenticate(request)
        if token is None:
            raise exceptions.NotAuthenticated()
        Token.objects.filter(key=token[1].key).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiViewSet(viewsets.GenericViewSet):
    """Base of every viewset: authenticated, role permission per action, paginated."""

    permission_classes = [IsAuthenticated, ActionPermission]
    pagination_class = Pagination
    schema = ApiAutoSchema()
    lookup_value_converter = "int"  # ids in paths are <int:pk>; anything else is a plain 404
    action_perms: dict[str, str] = {}


# --- patients -----------------------------------------------------------------------------------


@extend_schema(tags=["patients"])
class PatientViewSet(ApiViewSet):
    """Patients of the user's departments (F1.1, F1.6)."""

    action_perms = {
        "list": "patients.view_patient",
        "retrieve": "patients.view_patient",
        "reveal": "patients.reveal_patient",
    }

    def get_queryset(self) -> QuerySet[Patient]:
        patients = visible_to(_user(self.request))
        if self.action == "retrieve":
            encounters = Encounter.objects.select_related("department").prefetch_related(
                "surgeries", "medications", "orders"
            )
            patients = patients.prefetch_related(
                "contacts", Prefetch("encounters", queryset=encounters)
            )
        return patients

    @extend_schema(
        summary="List and search patients",
        description="The same search and filters as the patient list screen. Each patient "
        "comes with a summary of their latest encounter.",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                description="Combined search; every word must match one of: name, pinyin "
                "initials (e.g. `zs`), phone or its last four digits (family phones too), visit "
                "card number, medical record number, ID number, diagnosis code or name.",
            ),
            OpenApiParameter(
                "department", int, description="Id of a department the patient was treated in."
            ),
            OpenApiParameter(
                "kind",
                str,
                enum=EncounterKind.values,
                description="Kind of encounter; combines with `department` and the discharge "
                "dates, which must then hold for the same encounter.",
            ),
            OpenApiParameter(
                "discharged_from", OpenApiTypes.DATE, description="Discharged on or after."
            ),
            OpenApiParameter(
                "discharged_to", OpenApiTypes.DATE, description="Discharged on or before."
            ),
            OpenApiParameter(
                "flags",
                str,
                many=True,
                explode=True,
                enum=list(FLAG_FILTERS),
                description="Only patients with all these flags; repeat the parameter.",
            ),
        ],
        responses={200: s.PatientListSerializer(many=True), **_errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        form = PatientFilterForm(request.query_params, user=_user(request))
        if not form.is_valid():
            raise serializers.ValidationError(_form_errors(form))
        patients = with_last_encounter(filter_patients(self.get_queryset(), form.cleaned_data))
        page = self.paginate_queryset(patients)
        return self.get_paginated_response(s.PatientListSerializer(page, many=True).data)

    @extend_schema(
        summary="A patient with contacts and encounters",
        description="Phone and ID numbers are masked. Every read is written to the audit log.",
        responses={200: s.PatientDetailSerializer, **_errors(401, 403, 404)},
    )
    def retrieve(self, request: Request, pk: int) -> Response:
        patient = self.get_object()
        patient_services.record_view(
            patient, acting_user=_user(request), screen="api", request=request
        )
        return Response(s.PatientDetailSerializer(patient).data)

    @extend_schema(
        summary="Reveal full phone and ID numbers",
        description="Returns the unmasked numbers asked for and writes one audit event per "
        "number revealed (the patient's phone, each family phone, the ID number).",
        request=s.RevealRequestSerializer,
        responses={200: s.RevealSerializer, **_errors(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def reveal(self, request: Request, pk: int) -> Response:
        patient = self.get_object()
        ask = s.RevealRequestSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        numbers = ask.validated_data.get("numbers") or {"phone", "id_number"}
        user = _user(request)
        revealed: dict[str, Any] = {}
        # One audited reveal per number, as when each is revealed on the patient screen.
        if "phone" in numbers:
            revealed["phone"] = patient_services.reveal(
                patient, field="phone", acting_user=user, request=request
            )
            revealed["contacts"] = [
                {
                    "id": contact.pk,
                    "phone": patient_services.reveal(
                        patient, field=f"contact-{contact.pk}", acting_user=user, request=request
                    ),
                }
                for contact in patient.contacts.order_by("id")
            ]
        if "id_number" in numbers:
            revealed["id_number"] = patient_services.reveal(
                patient, field="id_number", acting_user=user, request=request
            )
        return Response(s.RevealSerializer(revealed).data)


# --- questionnaires -----------------------------------------------------------------------------


def _published_versions() -> Prefetch:
    return Prefetch(
        "versions",
        queryset=QuestionnaireVersion.objects.filter(published_at__isnull=False).order_by(
            "-number"
        ),
        to_attr="published_versions",
    )


@extend_schema(tags=["questionnaires"])
class QuestionnaireViewSet(ApiViewSet):
    """Questionnaires (F3.1). They hold no personal data: every user allowed to view
    questionnaires sees all of them, as in the UI."""

    action_perms = {
        "list": "surveys.view_questionnaire",
        "retrieve": "surveys.view_questionnaire",
        "versions": "surveys.view_questionnaire",
    }

    def get_queryset(self) -> QuerySet[Questionnaire]:
        questionnaires = questionnaires_visible_to(_user(self.request))
        if self.action in ("list", "retrieve"):
            questionnaires = questionnaires.prefetch_related(_published_versions())
        return questionnaires

    @extend_schema(
        summary="List questionnaires",
        parameters=[
            OpenApiParameter(
                "archived",
                bool,
                description="`true` lists archived questionnaires instead of current ones.",
            )
        ],
        responses={200: s.QuestionnaireSerializer(many=True), **_errors(401, 403)},
    )
    def list(self, request: Request) -> Response:
        archived = request.query_params.get("archived", "").lower() in ("1", "true", "yes")
        questionnaires = self.get_queryset().filter(is_archived=archived)
        page = self.paginate_queryset(questionnaires)
        return self.get_paginated_response(s.QuestionnaireSerializer(page, many=True).data)

    @extend_schema(
        summary="A questionnaire with its current published definition",
        responses={200: s.QuestionnaireDetailSerializer, **_errors(401, 403, 404)},
    )
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(s.QuestionnaireDetailSerializer(self.get_object()).data)

    @extend_schema(
        summary="Every version of a questionnaire, newest first",
        description="Unpublished drafts have `published_at` null. Answers keep the version they "
        "were given on, so old versions stay readable.",
        responses={200: s.QuestionnaireVersionSerializer(many=True), **_errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: int) -> Response:
        questionnaire = self.get_object()
        versions = questionnaire.versions.order_by("-number")
        return Response(s.QuestionnaireVersionSerializer(versions, many=True).data)


# --- follow-up plans ----------------------------------------------------------------------------


@extend_schema(tags=["plans"])
class PlanViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, ApiViewSet):
    """Follow-up plans of the user's departments (F2.1). Doctors define them; plans are master
    data, so they are saved directly, steps included."""

    serializer_class = s.PlanSerializer
    action_perms = {
        "list": "followup.view_plan",
        "retrieve": "followup.view_plan",
        "create": "followup.add_plan",
        "update": "followup.change_plan",
        "partial_update": "followup.change_plan",
    }

    def get_queryset(self) -> QuerySet[Plan]:
        return plans_visible_to(_user(self.request)).prefetch_related("steps")

    @extend_schema(
        summary="List follow-up plans",
        parameters=[
            OpenApiParameter("department", int, description="Only plans of this department."),
            OpenApiParameter(
                "active", bool, description="`true`: active plans only; `false`: inactive only."
            ),
            OpenApiParameter("trigger", str, enum=Trigger.values, description="Only this trigger."),
        ],
        responses={200: s.PlanSerializer(many=True), **_errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        params = _query(PlanFilterSerializer, request)
        plans = self.get_queryset()
        if "department" in params:
            plans = plans.filter(department_id=params["department"])
        if "active" in params:
            plans = plans.filter(is_active=params["active"])
        if "trigger" in params:
            plans = plans.filter(trigger=params["trigger"])
        page = self.paginate_queryset(plans)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="A follow-up plan with its steps",
        responses={200: s.PlanSerializer, **_errors(401, 403, 404)},
    )
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Define a follow-up plan",
        description="The plan and its steps in one request; the department must be one of "
        "the user's.",
        responses={201: s.PlanSerializer, **_errors(400, 401, 403)},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    @extend_schema(
        summary="Change a follow-up plan",
        description="`steps` replaces the list of steps: steps given with their `id` are "
        "changed, steps without an id are added, and steps left out are removed (refused for "
        "a step that already has tasks). Tasks already created keep their dates.",
        responses={200: s.PlanSerializer, **_errors(400, 401, 403, 404)},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().update(request, *args, **kwargs)

    @extend_schema(
        summary="Change some fields of a follow-up plan",
        description="As the full update; without `steps` the steps stay as they are.",
        responses={200: s.PlanSerializer, **_errors(400, 401, 403, 404)},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().partial_update(request, *args, **kwargs)


class PlanFilterSerializer(serializers.Serializer):
    department = serializers.IntegerField(required=False)
    active = serializers.BooleanField(required=False, default=None, allow_null=True)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        values = super().to_internal_value(data)
        return {key: value for key, value in values.items() if value is not None}


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The validated query parameters; a bad one is a 400 with the parameter's message."""
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


# --- follow-up tasks ----------------------------------------------------------------------------


class TaskFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[*TaskStatus.values, *STATUS_GROUPS], required=False, allow_blank=True
    )
    plan = serializers.IntegerField(required=False)
    assignee = serializers.CharField(required=False, allow_blank=True)
    department = serializers.IntegerField(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True)
    due_from = serializers.DateField(required=False)
    due_to = serializers.DateField(required=False)
    patient = serializers.IntegerField(required=False)

    def validate_assignee(self, value: str) -> str:
        if value in ("", "me", "none") or value.isdigit():
            return value
        raise serializers.ValidationError(_("Enter me, none or a user id."))

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("due_from") and data.get("due_to") and data["due_from"] > data["due_to"]:
            raise serializers.ValidationError(
                {"due_to": [_("The end date is before the start date.")]}
            )
        return data


@extend_schema(tags=["tasks"])
class TaskViewSet(ApiViewSet):
    """Follow-up tasks of the user's departments (F2.3, F2.4)."""

    action_perms = {
        "list": "followup.view_task",
        "retrieve": "followup.view_task",
        "outcome": "followup.work_task",
        "claim": "followup.work_task",
    }

    def get_queryset(self) -> QuerySet[Task]:
        records = FollowUpRecord.objects.select_related("recorded_by", "response").order_by(
            "-recorded_at", "-pk"
        )
        return (
            with_current_status(tasks_visible_to(_user(self.request)), local_today())
            .select_related("patient", "plan", "step", "department", "assignee", "enrollment")
            .prefetch_related(Prefetch("records", queryset=records))
        )

    @extend_schema(
        summary="List follow-up tasks",
        description="Ordered by deadline. `status` is the state on today's date.",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=[*TaskStatus.values, *STATUS_GROUPS],
                description="A state, or `open` (pending, due, overdue) or `failures` "
                "(unreached, lost).",
            ),
            OpenApiParameter("plan", int, description="Id of a plan."),
            OpenApiParameter(
                "assignee",
                str,
                description="`me`, `none` (the pool: unassigned tasks) or a user id.",
            ),
            OpenApiParameter("department", int, description="Id of a department."),
            OpenApiParameter("channel", str, enum=Channel.values, description="Contact channel."),
            OpenApiParameter(
                "due_from",
                OpenApiTypes.DATE,
                description="Target date (the day the contact is due) on or after.",
            ),
            OpenApiParameter("due_to", OpenApiTypes.DATE, description="Target date on or before."),
            OpenApiParameter("patient", int, description="Id of a patient."),
        ],
        responses={200: s.TaskSerializer(many=True), **_errors(400, 401, 403)},
    )
    def list(self, request: Request) -> Response:
        params = _query(TaskFilterSerializer, request)
        assignee = params.pop("assignee", "")
        if assignee == "me":
            assignee = str(_user(request).pk)
        data = {
            **params,
            "assignee": assignee,
            "date_from": params.get("due_from"),
            "date_to": params.get("due_to"),
        }
        tasks = task_list(_user(request), data, local_today())
        if "patient" in params:
            tasks = tasks.filter(patient_id=params["patient"])
        page = self.paginate_queryset(tasks)
        return self.get_paginated_response(s.TaskSerializer(page, many=True).data)

    @extend_schema(
        summary="A task with its script, questionnaire and earlier attempts",
        responses={200: s.TaskDetailSerializer, **_errors(401, 403, 404)},
    )
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(s.TaskDetailSerializer(self.get_object()).data)

    @extend_schema(
        summary="Record the outcome of a contact attempt",
        description="Moves the task as the workspace does: `reached` finishes it and saves the "
        "answers (checked against the step's questionnaire; bad answers are reported per "
        "question key under `answers`), `no_answer`/`busy` schedule a retry until the attempts "
        "are used up, `call_back` needs `callback_at`, `wrong_number`, `refused` and "
        "`deceased` finish it. An unassigned task is taken by the user recording.",
        request=s.OutcomeSerializer,
        responses={
            201: s.OutcomeResultSerializer,
            **_errors(400, 401, 403, 404),
            409: OpenApiResponse(description="The task is already finished."),
        },
    )
    @action(detail=True, methods=["post"])
    def outcome(self, request: Request, pk: int) -> Response:
        task = self.get_object()
        data = s.OutcomeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if task.status in FINAL:
            return _conflict(
                _("This task is already finished (%(status)s).")
                % {"status": task.get_status_display()}
            )
        try:
            record = record_outcome(
                task,
                outcome=data.validated_data["outcome"],
                answers=data.validated_data.get("answers"),
                note=data.validated_data["note"],
                callback_at=data.validated_data["callback_at"],
                acting_user=_user(request),
            )
        except AnswerError as exc:
            raise serializers.ValidationError({"answers": exc.errors}) from exc
        except (FollowupError, SurveyError) as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc
        task = self.get_queryset().get(pk=task.pk)
        result = {
            "record": s.FollowUpRecordSerializer(record).data,
            "task": s.TaskDetailSerializer(task).data,
        }
        return Response(result, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Claim a task from the pool",
        description="Assigns an unassigned open task to the user. Of two users claiming at "
        "once exactly one succeeds; the other gets 409.",
        request=None,
        responses={
            200: s.TaskDetailSerializer,
            **_errors(401, 403, 404),
            409: OpenApiResponse(description="The task is assigned already or finished."),
        },
    )
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: int) -> Response:
        task = self.get_object()
        if not claim(task, acting_user=_user(request)):
            return _conflict(_("Someone else has taken this task, or it is finished."))
        return Response(s.TaskDetailSerializer(self.get_queryset().get(pk=task.pk)).data)


def _conflict(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)


# --- enrolments ---------------------------------------------------------------------------------


@extend_schema(tags=["enrollments"])
class EnrollmentViewSet(ApiViewSet):
    """Manual enrolment of a patient on a plan (F2.2)."""

    action_perms = {"create": "followup.add_enrollment"}

    def get_queryset(self) -> QuerySet[Enrollment]:
        return enrollments_visible_to(_user(self.request))

    @extend_schema(
        summary="Enrol a patient on a follow-up plan",
        description="Creates the enrolment and one task per step. Idempotent: enrolling the "
        "same patient on the same plan and encounter (or anchor date) again returns the "
        "existing enrolment with 200. Plans and patients of other departments are "
        "'not found' (400 on the field).",
        request=s.EnrollmentCreateSerializer,
        responses={
            201: s.EnrollmentSerializer,
            200: s.EnrollmentSerializer,
            **_errors(400, 401, 403),
        },
    )
    def create(self, request: Request) -> Response:
        data = s.EnrollmentCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        started = timezone.now()
        try:
            enrollment = enrol(
                data.validated_data["plan"],
                data.validated_data["patient"],
                anchor_date=data.validated_data["anchor_date"],
                encounter=data.validated_data.get("encounter"),
                acting_user=_user(request),
            )
        except FollowupError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc
        created = enrollment.enrolled_at >= started
        enrollment = (
            Enrollment.objects.prefetch_related(
                Prefetch(
                    "tasks",
                    queryset=Task.objects.select_related("step", "assignee").order_by(
                        "step__order", "pk"
                    ),
                )
            )
        ).get(pk=enrollment.pk)
        return Response(
            s.EnrollmentSerializer(enrollment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
