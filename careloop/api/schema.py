"""OpenAPI helpers for drf-spectacular."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose enum is the schema component ``<enum_name>Enum``.

    drf-spectacular names enum components after the field, so two choice sets under one field
    name (task ``status`` / enrolment ``status``), or one choice set under two names (``kind`` /
    ``last_kind``), end in naming warnings; naming the enum after its choices class avoids them.
    """

    def __init__(self, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        values = [value for value in field.choices if value not in ("", None)]
        component = ResolvedComponent(
            name=f"{field.enum_name}Enum",
            type=ResolvedComponent.SCHEMA,
            object=f"{field.enum_name}Enum",
            schema={
                "type": "string",
                "enum": values,
                "description": "\n".join(
                    f"* `{value}` - {label}" for value, label in field.choices.items()
                ),
            },
        )
        auto_schema.registry.register_on_missing(component)
        if field.allow_null:
            return {"allOf": [component.ref], "nullable": True}
        return component.ref


class ApiAutoSchema(AutoSchema):
    """Operation ids without the version segment: ``patients_list``, not ``v1_patients_list``."""

    def get_operation_id(self) -> str:
        return str(super().get_operation_id()).removeprefix("v1_")
