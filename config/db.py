"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from django.db import connections, models, router


def update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of many saved rows of one model, each row its own values.

    On PostgreSQL it is one statement for all of them, ``UPDATE … FROM
    unnest(<one array per column>)``: Django binds parameters on the client, so
    one UPDATE per row would have the server parse and plan every row again
    (the Knox poll writes 20,000 rows a cycle at scale; bench/scale_bench.py).
    Elsewhere it is one parameterised UPDATE per row sent with ``executemany``.
    Either costs a fraction of Django's ``bulk_update``, which builds a CASE
    expression per row and field (~10 ms a row in Python for a few fields,
    bench/approvals_bench.py). Values go through each field's
    ``get_db_prep_save``, as ``save()`` would; a row listed twice is written
    with its last values."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    columns = [model._meta.get_field(name) for name in fields]
    pk = model._meta.pk
    rows = {
        obj.pk: [
            field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns
        ]
        for obj in objs
    }
    sql = (
        _unnest_update_sql(model, tuple(fields), connection.alias)
        if connection.vendor == "postgresql"
        else None
    )
    with connection.cursor() as cursor:
        if sql is not None:
            keys = [pk.get_db_prep_save(key, connection) for key in rows]
            columns_of_values = [list(column) for column in zip(*rows.values(), strict=True)]
            cursor.execute(sql, [keys, *columns_of_values])
            return
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET "
            + ", ".join(f"{quote(field.column)} = %s" for field in columns)
            + f" WHERE {quote(pk.column)} = %s"
        )
        cursor.executemany(
            sql, [[*values, pk.get_db_prep_save(key, connection)] for key, values in rows.items()]
        )


@lru_cache(maxsize=256)
def _unnest_update_sql(
    model: type[models.Model], fields: tuple[str, ...], alias: str
) -> str | None:
    """``UPDATE t SET a = v.a, … FROM unnest(%s::<pk type>[], %s::<a's type>[], …)
    AS v(pk, a, …) WHERE t.pk = v.pk``, or None when a column's type has no
    name to cast an array to (then rows go one UPDATE each)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    types = [field.db_type(connection) for field in columns]
    # (An array column's arrays would be flattened by unnest.)
    if any(not kind or kind.endswith("]") for kind in types):
        return None
    names = [f"c{index}" for index in range(len(columns))]
    assignments = ", ".join(
        f"{quote(field.column)} = v.{name}"
        for field, name in zip(columns[1:], names[1:], strict=True)
    )
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    return (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE t.{quote(meta.pk.column)} = v.{names[0]}"
    )


@lru_cache(maxsize=256)
def _conditional_update_sql(
    model: type[models.Model], fields: tuple[str, ...], status_count: int, alias: str
) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    placeholders = ", ".join(["%s"] * status_count)
    return (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "
        f"WHERE {quote(meta.pk.column)} = %s AND {quote(meta.get_field('status').column)} IN ({placeholders})"
    )


def update_if_status(obj: models.Model, values: dict, *, status_in: Sequence[str]) -> int:
    """``UPDATE … SET values WHERE pk = obj.pk AND status IN status_in``: a
    state transition checked and made in one statement (the row is locked by
    the UPDATE itself). Returns the rows changed, 0 or 1. Values go through
    each field's ``get_db_prep_save``, as ``save()`` would; the SQL is built
    once per shape. It does what ``QuerySet.filter().update()`` does at a
    third of its cost, on the ledger's hot path (bench/operations_bench.py)."""
    model = type(obj)
    alias = router.db_for_write(model)
    connection = connections[alias]
    fields = tuple(values)
    sql = _conditional_update_sql(model, fields, len(status_in), alias)
    params = [
        model._meta.get_field(name).get_db_prep_save(values[name], connection) for name in fields
    ]
    params += [obj.pk, *status_in]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def update_by_pks(model: type[models.Model], pks: Sequence, **values) -> int:
    """``UPDATE … SET values WHERE pk IN pks``, for many rows at once. On
    PostgreSQL the keys travel as one array (``= ANY(%s)``), so a few thousand
    keys cost the client one parameter, not one each (the Knox poll touches
    every unchanged document: 100,000 a minute at scale); elsewhere it is
    ``QuerySet.update``. Returns the rows changed."""
    if not pks:
        return 0
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return model._default_manager.using(alias).filter(pk__in=pks).update(**values)
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.get_field(name) for name in values]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "
        + ", ".join(f"{quote(field.column)} = %s" for field in columns)
        + f" WHERE {quote(meta.pk.column)} = ANY(%s)"
    )
    params = [field.get_db_prep_save(values[field.name], connection) for field in columns]
    params.append([meta.pk.get_db_prep_value(pk, connection) for pk in pks])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
