"""API representations. Phone and ID numbers always leave masked; ``reveal`` is the only way round."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from careloop.accounts.models import Department, User
from careloop.accounts.queries import department_ids, visible_departments
from careloop.api.schema import NamedChoiceField
from careloop.core.formats import mask_id_number, mask_phone
from careloop.followup.choices import EnrollmentStatus, Outcome, TaskStatus
from careloop.followup.models import Enrollment, FollowUpRecord, Plan, PlanStep, Task, Team
from careloop.followup.queries import plans_visible_to
from careloop.followup.services import anchor_for, questionnaire_version
from careloop.patients.choices import EncounterKind
from careloop.patients.models import (
    DischargeOrder,
    Encounter,
    Medication,
    Patient,
    PatientContact,
    Surgery,
)
from careloop.patients.queries import visible_to as patient_gate
from careloop.surveys.models import Questionnaire, QuestionnaireVersion


@extend_schema_field(OpenApiTypes.STR)
class MaskedPhoneField(serializers.Field):
    """A phone number shown as 138****1234."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> str:
        return mask_phone(value)


@extend_schema_field(OpenApiTypes.STR)
class MaskedIdNumberField(MaskedPhoneField):
    """An ID-card number shown as 110101********123X."""

    def to_representation(self, value: str) -> str:
        return mask_id_number(value)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expires_at = serializers.DateTimeField(help_text="After this time the token is refused.")


class DepartmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "code", "name"]


class UserRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "display_name"]


# --- patients -----------------------------------------------------------------------------------


class PatientSummarySerializer(serializers.ModelSerializer):
    """A patient as shown in lists: the phone number masked, no ID number."""

    phone = MaskedPhoneField(help_text="Masked, e.g. 138****1234.")

    class Meta:
        model = Patient
        fields = [
            "id",
            "name",
            "sex",
            "birth_date",
            "phone",
            "card_no",
            "record_no",
            "vip_level",
            "tags",
            "is_deceased",
            "do_not_contact",
        ]


class PatientListSerializer(PatientSummarySerializer):
    """A row of the patient list, with the latest encounter in brief."""

    last_department = serializers.CharField(
        read_only=True, allow_null=True, help_text="Department name of the latest encounter."
    )
    last_kind = NamedChoiceField(
        enum_name="EncounterKind", choices=EncounterKind.choices, read_only=True, allow_null=True
    )
    last_discharged_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_diagnosis = serializers.CharField(read_only=True, allow_null=True)

    class Meta(PatientSummarySerializer.Meta):
        fields = [
            *PatientSummarySerializer.Meta.fields,
            "last_department",
            "last_kind",
            "last_discharged_at",
            "last_diagnosis",
        ]


class ContactSerializer(serializers.ModelSerializer):
    phone = MaskedPhoneField(help_text="Masked, e.g. 138****1234.")

    class Meta:
        model = PatientContact
        fields = ["id", "name", "relation", "phone", "is_primary"]


class SurgerySerializer(serializers.ModelSerializer):
    class Meta:
        model = Surgery
        fields = ["id", "code", "name", "performed_at", "surgeon_name"]


class MedicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Medication
        fields = ["id", "drug", "dose", "frequency", "route", "quantity", "unit", "daily_amount"]


class DischargeOrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = DischargeOrder
        fields = ["id", "text"]


class EncounterSerializer(serializers.ModelSerializer):
    department = DepartmentRefSerializer(read_only=True)
    surgeries = SurgerySerializer(many=True, read_only=True)
    medications = MedicationSerializer(many=True, read_only=True)
    orders = DischargeOrderSerializer(many=True, read_only=True)

    class Meta:
        model = Encounter
        fields = [
            "id",
            "encounter_no",
            "kind",
            "department",
            "ward",
            "bed",
            "attending_doctor_name",
            "started_at",
            "discharged_at",
            "diagnosis_code",
            "diagnosis_name",
            "surgeries",
            "medications",
            "orders",
        ]


class PatientDetailSerializer(PatientSummarySerializer):
    """A patient record with contacts and encounters; numbers masked."""

    id_number = MaskedIdNumberField(help_text="Masked, e.g. 110101********123X.")
    contacts = ContactSerializer(many=True, read_only=True)
    encounters = EncounterSerializer(many=True, read_only=True)

    class Meta(PatientSummarySerializer.Meta):
        fields = [
            *PatientSummarySerializer.Meta.fields,
            "id_number",
            "address",
            "registered_department",
            "custom_fields",
            "deceased_on",
            "sms_opt_out",
            "call_opt_out",
            "created_at",
            "updated_at",
            "contacts",
            "encounters",
        ]


class RevealRequestSerializer(serializers.Serializer):
    numbers = serializers.MultipleChoiceField(
        choices=[("phone", "phone"), ("id_number", "id_number")],
        required=False,
        help_text="What to reveal; both when omitted. Phone covers the contacts' numbers too.",
    )


class RevealedContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone = serializers.CharField()


class RevealSerializer(serializers.Serializer):
    phone = serializers.CharField(required=False, help_text="Full phone number.")
    contacts = RevealedContactSerializer(many=True, required=False)
    id_number = serializers.CharField(required=False, help_text="Full ID-card number.")


# --- questionnaires -----------------------------------------------------------------------------


class QuestionnaireVersionSerializer(serializers.ModelSerializer):
    definition = serializers.JSONField(
        help_text='`{"questions": [...]}`: each question has key, type, text, required, '
        "options, min/max/unit, scale and show_if (skip logic)."
    )

    class Meta:
        model = QuestionnaireVersion
        fields = ["id", "number", "published_at", "created_at", "definition"]


class QuestionnaireVersionRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuestionnaireVersion
        fields = ["id", "number", "published_at"]


class QuestionnaireSerializer(serializers.ModelSerializer):
    """A questionnaire with its current published version (none until one is published)."""

    current_version = serializers.SerializerMethodField()

    class Meta:
        model = Questionnaire
        fields = [
            "id",
            "code",
            "title",
            "description",
            "department",
            "is_archived",
            "current_version",
        ]

    @extend_schema_field(QuestionnaireVersionRefSerializer(allow_null=True))
    def get_current_version(self, obj: Questionnaire) -> dict[str, Any] | None:
        version = _current_version(obj)
        return QuestionnaireVersionRefSerializer(version).data if version else None


class QuestionnaireDetailSerializer(QuestionnaireSerializer):
    @extend_schema_field(QuestionnaireVersionSerializer(allow_null=True))
    def get_current_version(self, obj: Questionnaire) -> dict[str, Any] | None:
        version = _current_version(obj)
        return QuestionnaireVersionSerializer(version).data if version else None


def _current_version(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    """The latest published version, from ``published_versions`` when the view prefetched it."""
    prefetched = getattr(questionnaire, "published_versions", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return questionnaire.current_version


# --- follow-up plans ----------------------------------------------------------------------------

RULE_KEYS = {"diagnosis_prefixes", "surgery_codes", "min_age", "max_age"}
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*$")  # as the plan form (followup/forms.py)
MAX_AGE = 150


class PlanStepSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(
        required=False,
        help_text="Give the id of an existing step to change it; steps without an id are added "
        "and existing steps left out are removed.",
    )
    questionnaire = serializers.PrimaryKeyRelatedField(
        queryset=Questionnaire.objects.all(),
        allow_null=True,
        required=False,
        help_text="Questionnaire filled at this step: one of the user's departments or a "
        "hospital-wide one, not archived (a step keeps the one it has).",
    )

    class Meta:
        model = PlanStep
        fields = [
            "id",
            "order",
            "title",
            "day_offset",
            "window_before",
            "window_after",
            "channel",
            "questionnaire",
            "script",
        ]


class PlanSerializer(serializers.ModelSerializer):
    """A follow-up plan with its steps, written together (master data)."""

    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(),
        help_text="One of the user's departments; cannot change once patients are enrolled.",
    )
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        allow_null=True,
        required=False,
        help_text="A team of the plan's department, whose members share the tasks.",
    )
    rules = serializers.JSONField(
        required=False,
        help_text='Automatic enrolment rules, e.g. `{"diagnosis_prefixes": ["I21"], '
        '"surgery_codes": ["36.06"], "min_age": 18, "max_age": null}`.',
    )
    steps = PlanStepSerializer(many=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "department",
            "trigger",
            "rules",
            "auto_enrol",
            "team",
            "assignment",
            "script",
            "max_attempts",
            "retry_interval_hours",
            "is_active",
            "created_at",
            "steps",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {"max_attempts": {"min_value": 1}}

    def validate_department(self, department: Department) -> Department:
        if not visible_departments(self.context["request"].user).filter(
            pk=department.pk, is_active=True
        ):
            raise serializers.ValidationError(_("You can only define plans of your departments."))
        if (
            self.instance is not None
            and self.instance.department_id != department.pk
            and self.instance.enrollments.exists()
        ):
            raise serializers.ValidationError(
                _("Patients are enrolled on this plan: its department cannot change.")
            )
        return department

    def validate_rules(self, rules: Any) -> dict[str, Any]:
        """The rules the plan form writes (followup/forms.py PlanForm), checked the same way."""
        if rules is None:
            return {}
        if not isinstance(rules, dict):
            raise serializers.ValidationError(_("Enter an object."))
        unknown = sorted(set(rules) - RULE_KEYS)
        if unknown:
            raise serializers.ValidationError(
                _("Unknown rules: %(keys)s.") % {"keys": ", ".join(unknown)}
            )
        cleaned: dict[str, Any] = {}
        for key in ("diagnosis_prefixes", "surgery_codes"):
            codes = rules.get(key) or []
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise serializers.ValidationError({key: _("Enter a list of codes.")})
            codes = [code.strip().upper() for code in codes if code.strip()]
            bad = [code for code in codes if not CODE_RE.match(code)]
            if bad:
                raise serializers.ValidationError(
                    {key: _("Not a valid code: %(codes)s") % {"codes": ", ".join(bad)}}
                )
            if codes:
                cleaned[key] = codes
        for key in ("min_age", "max_age"):
            age = rules.get(key)
            if age is None:
                continue
            if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= MAX_AGE:
                raise serializers.ValidationError({key: _("Enter a whole number of years.")})
            cleaned[key] = age
        low, high = cleaned.get("min_age"), cleaned.get("max_age")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"max_age": _("The maximum age is below the minimum age.")}
            )
        return cleaned

    def validate_steps(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not steps:
            raise serializers.ValidationError(_("A plan needs at least one step."))
        orders = [step["order"] for step in steps]
        if len(set(orders)) != len(orders):
            raise serializers.ValidationError(_("Two steps have the same order."))
        ids = department_ids(self.context["request"].user)
        existing: dict[int, int | None] = (
            dict(self.instance.steps.values_list("pk", "questionnaire_id")) if self.instance else {}
        )
        for step in steps:
            if "id" in step and step["id"] not in existing:
                raise serializers.ValidationError(
                    _("Step %(id)s is not a step of this plan.") % {"id": step["id"]}
                )
            questionnaire = step.get("questionnaire")
            if questionnaire is None or existing.get(step.get("id", 0)) == questionnaire.pk:
                continue  # a step keeps the questionnaire it has, even an archived one
            if questionnaire.is_archived:
                raise serializers.ValidationError(
                    _("The questionnaire %(title)s is archived.") % {"title": questionnaire.title}
                )
            if ids is not None and questionnaire.department_id not in (None, *ids):
                raise serializers.ValidationError(
                    _("The questionnaire %(title)s belongs to another department.")
                    % {"title": questionnaire.title}
                )
        return steps

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        department = data.get("department") or getattr(self.instance, "department", None)
        team = data["team"] if "team" in data else getattr(self.instance, "team", None)
        if team is not None and department is not None and team.department_id != department.pk:
            raise serializers.ValidationError(
                {"team": [_("The team belongs to another department.")]}
            )
        if self.instance is not None and "steps" in data:
            kept = {step["id"] for step in data["steps"] if "id" in step}
            removed = self.instance.steps.exclude(pk__in=kept)
            if removed.filter(tasks__isnull=False).exists():
                raise serializers.ValidationError(
                    {"steps": [_("A step with follow-up tasks cannot be removed.")]}
                )
        return data

    def create(self, validated_data: dict[str, Any]) -> Plan:
        steps = validated_data.pop("steps")
        with transaction.atomic():
            plan = Plan.objects.create(created_by=self.context["request"].user, **validated_data)
            self._save_steps(plan, steps)
        return plan

    def update(self, instance: Plan, validated_data: dict[str, Any]) -> Plan:
        steps = validated_data.pop("steps", None)
        with transaction.atomic():
            for field, value in validated_data.items():
                setattr(instance, field, value)
            if validated_data:
                instance.save(update_fields=list(validated_data))
            if steps is not None:
                self._save_steps(instance, steps)
        return instance

    def _save_steps(self, plan: Plan, steps: list[dict[str, Any]]) -> None:
        kept = [step["id"] for step in steps if "id" in step]
        try:
            plan.steps.exclude(pk__in=kept).delete()
        except ProtectedError as exc:  # tasks were created since validate()
            raise serializers.ValidationError(
                {"steps": [_("A step with follow-up tasks cannot be removed.")]}
            ) from exc
        # Orders are unique per plan: park the kept steps out of the way before renumbering.
        for n, pk in enumerate(kept, start=1):
            PlanStep.objects.filter(pk=pk).update(order=PARKED_ORDER + n)
        for data in steps:
            fields = {key: value for key, value in data.items() if key != "id"}
            if "id" in data:
                PlanStep.objects.filter(pk=data["id"]).update(**fields)
            else:
                PlanStep.objects.create(plan=plan, **fields)
        # The prefetched steps, if any, are stale now.
        getattr(plan, "_prefetched_objects_cache", {}).pop("steps", None)


#: Steps are renumbered through orders above any real one (PositiveSmallIntegerField max 32767).
PARKED_ORDER = 30000


# --- follow-up tasks ----------------------------------------------------------------------------


class PlanRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "name"]


class StepRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlanStep
        fields = ["id", "order", "title", "day_offset"]


class TaskSerializer(serializers.ModelSerializer):
    """A follow-up task as listed; ``status`` is the state on today's date."""

    status = serializers.SerializerMethodField()
    patient = PatientSummarySerializer(read_only=True)
    plan = PlanRefSerializer(read_only=True)
    step = StepRefSerializer(read_only=True)
    department = DepartmentRefSerializer(read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "status",
            "patient",
            "plan",
            "step",
            "department",
            "assignee",
            "channel",
            "target_date",
            "window_start",
            "deadline",
            "attempts",
            "next_attempt_at",
            "outcome",
            "completed_at",
            "end_reason",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=TaskStatus.choices))
    def get_status(self, task: Task) -> str:
        return getattr(task, "current_status", None) or task.status


class FollowUpRecordSerializer(serializers.ModelSerializer):
    recorded_by = UserRefSerializer(read_only=True, allow_null=True)
    answers = serializers.SerializerMethodField()

    class Meta:
        model = FollowUpRecord
        fields = [
            "id",
            "outcome",
            "channel",
            "note",
            "callback_at",
            "response",
            "answers",
            "recorded_by",
            "recorded_at",
        ]

    @extend_schema_field(
        serializers.DictField(allow_null=True, help_text="Answers, by question key.")
    )
    def get_answers(self, record: FollowUpRecord) -> dict[str, Any] | None:
        return record.response.answers if record.response_id and record.response else None


class TaskStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlanStep
        fields = ["id", "order", "title", "day_offset", "channel", "script", "questionnaire"]


class TaskPlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "name", "script", "max_attempts", "retry_interval_hours"]


class EnrollmentRefSerializer(serializers.ModelSerializer):
    status = NamedChoiceField(
        enum_name="EnrollmentStatus", choices=EnrollmentStatus.choices, read_only=True
    )

    class Meta:
        model = Enrollment
        fields = ["id", "anchor_date", "status", "encounter"]


class TaskDetailSerializer(TaskSerializer):
    """A task with what the nurse needs while calling: script, questionnaire, earlier attempts."""

    plan = TaskPlanSerializer(read_only=True)  # type: ignore[assignment]  # more than the list's
    step = TaskStepSerializer(read_only=True)  # type: ignore[assignment]
    enrollment = EnrollmentRefSerializer(read_only=True)
    questionnaire_version = serializers.SerializerMethodField()
    records = FollowUpRecordSerializer(many=True, read_only=True)

    class Meta(TaskSerializer.Meta):
        fields = [
            *TaskSerializer.Meta.fields,
            "enrollment",
            "questionnaire_version",
            "records",
        ]

    @extend_schema_field(
        QuestionnaireVersionSerializer(
            allow_null=True,
            help_text="The step questionnaire's current published version: answers given "
            "with a `reached` outcome are checked against it.",
        )
    )
    def get_questionnaire_version(self, task: Task) -> dict[str, Any] | None:
        version = questionnaire_version(task.step)
        return QuestionnaireVersionSerializer(version).data if version else None


class OutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    answers = serializers.DictField(
        required=False,
        help_text="Questionnaire answers by question key; only with outcome `reached`.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")
    callback_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When to call back; required with outcome `call_back`.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        # Checked again by record_outcome; here to answer with a field-level message.
        if data["outcome"] == Outcome.CALL_BACK:
            callback_at = data.get("callback_at")
            if callback_at is None:
                raise serializers.ValidationError(
                    {"callback_at": [_("Give the time to call back.")]}
                )
            if callback_at <= timezone.now():
                raise serializers.ValidationError(
                    {"callback_at": [_("The call-back time must be in the future.")]}
                )
        return data


class OutcomeResultSerializer(serializers.Serializer):
    record = FollowUpRecordSerializer()
    task = TaskDetailSerializer()


# --- enrolments ---------------------------------------------------------------------------------


class GatedField(serializers.PrimaryKeyRelatedField):
    """An id looked up through a department gate (``gate(user)``): another department's record
    is "not found", like one that does not exist. ``queryset`` only tells the schema the model."""

    def __init__(self, *, gate: Callable[[User], QuerySet[Any]], **kwargs: Any) -> None:
        self.gate = gate
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return self.gate(self.context["request"].user)


class EnrollmentCreateSerializer(serializers.Serializer):
    """Checks ids against the user's gates: another department's plan or patient is 'not found'."""

    plan = GatedField(gate=plans_visible_to, queryset=Plan.objects.none())
    patient = GatedField(gate=patient_gate, queryset=Patient.objects.none())
    encounter = GatedField(
        gate=lambda user: Encounter.objects.filter(patient__in=patient_gate(user)),
        queryset=Encounter.objects.none(),
        required=False,
        allow_null=True,
        help_text="The encounter the follow-up is about; enrolling twice on it returns the "
        "existing enrolment.",
    )
    anchor_date = serializers.DateField(
        required=False,
        help_text="Day 0 of the plan's schedule. Optional with an encounter: then the plan's "
        "trigger decides (discharge, surgery or visit date).",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        encounter = data.get("encounter")
        if encounter is not None and encounter.patient_id != data["patient"].pk:
            raise serializers.ValidationError(
                {"encounter": [_("The encounter belongs to another patient.")]}
            )
        if not data.get("anchor_date"):
            anchor = anchor_for(data["plan"], encounter)
            if anchor is None:
                raise serializers.ValidationError(
                    {"anchor_date": [_("Give the anchor date: the encounter does not give one.")]}
                )
            data["anchor_date"] = anchor
        return data


class EnrollmentTaskSerializer(serializers.ModelSerializer):
    step = StepRefSerializer(read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = ["id", "step", "status", "target_date", "window_start", "deadline", "assignee"]


class EnrollmentSerializer(serializers.ModelSerializer):
    status = NamedChoiceField(
        enum_name="EnrollmentStatus", choices=EnrollmentStatus.choices, read_only=True
    )
    tasks = EnrollmentTaskSerializer(many=True, read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "plan",
            "patient",
            "encounter",
            "anchor_date",
            "status",
            "enrolled_by",
            "enrolled_at",
            "tasks",
        ]
