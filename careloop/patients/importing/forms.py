"""Forms of the web import: the upload and the column-mapping step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from careloop.accounts.models import Department, User
from careloop.accounts.queries import visible_departments
from careloop.patients.importing.fields import IDENTIFIERS, IGNORE, field_choices
from careloop.patients.importing.service import Column
from careloop.patients.importing.staging import ALLOWED_SUFFIXES

MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def _department_field(user: User) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=visible_departments(user).order_by("code"),
        required=False,
        label=_("Default department"),
        help_text=_("Used for rows whose file names no department."),
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "Excel workbook (.xlsx) or csv (UTF-8 or GBK) with a header row, as exported by the "
            "hospital information system."
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"] = _department_field(user)
        self.fields["review"] = forms.BooleanField(
            label=_("Check the column mapping before importing"),
            help_text=_(
                "Otherwise a file whose columns are all recognised, or were mapped before for "
                "the same headers, is imported at once."
            ),
            required=False,
        )
        self.fields["file"].widget.attrs["accept"] = ",".join(ALLOWED_SUFFIXES)

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        suffix = Path(upload.name or "").suffix.lower()
        if suffix == ".xls":
            raise forms.ValidationError(
                _("Old Excel files (.xls) are not supported: save the file as .xlsx.")
            )
        if suffix not in ALLOWED_SUFFIXES:
            raise forms.ValidationError(_("Choose an .xlsx or .csv file."))
        if (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 100 MB."))
        return upload


class MappingForm(forms.Form):
    """One select per column of the file (``col_0``, ``col_1`` …) plus the default department."""

    def __init__(self, *args: Any, columns: list[Column], user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        for index, column in enumerate(columns):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=column.label,
                choices=field_choices(),
                required=False,
                initial=column.field or IGNORE,
            )
        self.fields["department"] = _department_field(user)

    def rows(self) -> list[tuple[Column, forms.BoundField]]:
        return [(column, self[f"col_{i}"]) for i, column in enumerate(self.columns)]

    def mapping(self) -> dict[str, str]:
        return {
            column.label: self.cleaned_data.get(f"col_{i}") or IGNORE
            for i, column in enumerate(self.columns)
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any(field in IDENTIFIERS for field in self.mapping().values()):
            raise forms.ValidationError(
                _(
                    "Map at least one column to the medical record number, the visit card "
                    "number or the ID-card number: patients are identified by them."
                )
            )
        return cleaned

    @property
    def department(self) -> Department | None:
        return self.cleaned_data.get("department")
