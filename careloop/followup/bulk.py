"""Fast multi-row INSERTs for the plan engine's high-volume rows (enrolments and tasks).

``Model.objects.bulk_create`` spends most of its time preparing every field of every object
(bench/plan_engine.py measured about 4× the cost of the INSERT itself). ``insert_rows`` takes
plain tuples for the named fields, adapts dates and datetimes once per distinct value and runs
portable parameterised multi-row INSERTs on SQLite and PostgreSQL alike. No signals, no
``save()``: callers give every non-null column a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection, models

CHUNK = 1000


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
    ``model``'s table, many rows per statement; returns the number of rows."""
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    model_fields = [by_attname[name] for name in fields]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in model_fields)
    head = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES "
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Multi-row VALUES: one round trip per chunk on PostgreSQL, within SQLite's 32,766 and
    # PostgreSQL's 65,535 parameters per statement.
    per_statement = max(1, min(CHUNK, 30_000 // len(fields)))
    full_sql = head + ", ".join([one] * per_statement)
    # Only dates, datetimes and JSON need converting; the other values go to the driver as they are.
    adapted = [
        (index, _adapter(f))
        for index, f in enumerate(model_fields)
        if isinstance(f, models.DateField | models.JSONField)
    ]
    count = 0
    params: list[Any] = []
    pending = 0
    with connection.cursor() as cursor:
        for row in rows:
            if adapted:
                row = list(row)
                for index, adapt in adapted:
                    row[index] = adapt(row[index])
            params.extend(row)
            pending += 1
            if pending == per_statement:
                cursor.execute(full_sql, params)
                count += pending
                params, pending = [], 0
        if pending:
            cursor.execute(head + ", ".join([one] * pending), params)
            count += pending
    return count
