"""Plain multi-row INSERTs of new model instances whose primary keys are not needed afterwards.

``bulk_create`` prepares every field of every object through the ORM; for the hundred thousand
encounters and contacts of a large import that is most of the write time. Here each value is read
once (``pre_save`` fills ``auto_now`` fields), dates, datetimes and JSON are adapted for the
database, and the rows go to the driver with ``executemany`` — the same SQL on SQLite and
PostgreSQL. No signals and no ``save()``, as with ``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models

BATCH = 1000


def _adapter(field: models.Field) -> Callable[[Any], Any] | None:
    ops = connection.ops
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    if isinstance(field, models.DateTimeField):
        return lambda value: None if value is None else ops.adapt_datetimefield_value(value)
    if isinstance(field, models.DateField):
        return lambda value: None if value is None else ops.adapt_datefield_value(value)
    if isinstance(field, models.DecimalField):
        return lambda value: field.get_db_prep_save(value, connection)
    return None


def insert_objects(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """INSERT unsaved ``objects`` of ``model`` (primary keys are left unset on the objects)."""
    if not objects:
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    adapters = [_adapter(f) for f in fields]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
        f"VALUES ({placeholders})"
    )
    rows: list[list[Any]] = []
    for obj in objects:
        row = [field.pre_save(obj, True) for field in fields]
        for index, adapt in enumerate(adapters):
            if adapt is not None:
                row[index] = adapt(row[index])
        rows.append(row)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
