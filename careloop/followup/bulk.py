"""Fast multi-row INSERTs for the plan engine's high-volume rows (enrolments and tasks).

``Model.objects.bulk_create`` spends most of its time preparing every field of every object
(bench/plan_engine.py measured about 4× the cost of the INSERT itself). ``insert_rows`` takes
plain tuples for the named fields, adapts dates and datetimes once per distinct value and runs a
portable parameterised INSERT (``executemany``) on SQLite and PostgreSQL alike. No signals, no
``save()``: callers give every non-null column a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection, models

CHUNK = 2000


def _adapter(field: models.Field) -> Callable[[Any], Any]:
    ops = connection.ops
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    if isinstance(field, models.DateTimeField):
        convert = ops.adapt_datetimefield_value
    elif isinstance(field, models.DateField):
        convert = ops.adapt_datefield_value
    else:
        raise TypeError(f"no adapter needed for {field}")
    cache: dict[Any, Any] = {}

    def adapt(value: Any) -> Any:
        if value is None:
            return None
        try:
            return cache[value]
        except KeyError:
            cache[value] = adapted = convert(value)
            return adapted

    return adapt


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """INSERT ``rows`` (tuples in the order of ``fields``, attnames such as ``plan_id``) into
    ``model``'s table; returns the number of rows."""
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    model_fields = [by_attname[name] for name in fields]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in model_fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({placeholders})"
    # Only dates, datetimes and JSON need converting; the other values go to the driver as they are.
    adapted = [
        (index, _adapter(f))
        for index, f in enumerate(model_fields)
        if isinstance(f, models.DateField | models.JSONField)
    ]
    count = 0
    chunk: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        for row in rows:
            if adapted:
                row = list(row)
                for index, adapt in adapted:
                    row[index] = adapt(row[index])
            chunk.append(row)
            if len(chunk) >= CHUNK:
                cursor.executemany(sql, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            cursor.executemany(sql, chunk)
            count += len(chunk)
    return count
