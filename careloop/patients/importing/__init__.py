"""Patient import from xlsx/csv files (F1.3): ``import_file`` is the service, the rest its parts."""

from careloop.patients.importing.fields import FIELDS, FIELDS_BY_KEY, IGNORE, field_choices
from careloop.patients.importing.reader import ReadError
from careloop.patients.importing.service import (
    FileInfo,
    ImportOutcome,
    import_file,
    inspect_file,
    remembered_mapping,
    validate_mapping,
)

__all__ = [
    "FIELDS",
    "FIELDS_BY_KEY",
    "IGNORE",
    "FileInfo",
    "ImportOutcome",
    "ReadError",
    "field_choices",
    "import_file",
    "inspect_file",
    "remembered_mapping",
    "validate_mapping",
]
