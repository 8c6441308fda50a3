"""The SQL of an `order_list` view, with `{table}` and its indexes `{<suffix>}` left for
`OrderListView.sql` to name (the live table and the rebuilt one share every statement)."""

from __future__ import annotations

COLUMNS = (
    "id",
    "customer_id",
    "side",
    "status",
    "created_at",
    "updated_at",
    "version",
    "position",
    "view",
    "ops",
    "needs_attention",
)
"""Every column, in the table's order (the order `OrderListView.values` gives them in)."""
INDEX_SUFFIXES = ("pkey", "customer_created_idx", "status_created_idx", "attention_idx")
"""The table's indexes are named `<table>_<suffix>`."""

CREATE = (
    (
        "CREATE TABLE IF NOT EXISTS {table} ("
        " id uuid PRIMARY KEY,"
        " customer_id uuid NOT NULL,"
        " side text NOT NULL,"
        " status text NOT NULL,"
        " created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL,"
        " version bigint NOT NULL,"
        " position bigint NOT NULL,"
        " view jsonb NOT NULL)"
    ),
    (
        "CREATE INDEX IF NOT EXISTS {customer_created_idx}"
        " ON {table} (customer_id, created_at DESC, id DESC)"
    ),
    "CREATE INDEX IF NOT EXISTS {status_created_idx} ON {table} (status, created_at)",
    # Added with operator facts: rows written before have none until a rebuild.
    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS ops jsonb NOT NULL DEFAULT '{{}}'",
    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS needs_attention boolean NOT NULL DEFAULT false",
    "CREATE INDEX IF NOT EXISTS {attention_idx} ON {table} (created_at) WHERE needs_attention",
)

_PLACEHOLDERS = ", ".join("%s::jsonb" if c in {"view", "ops"} else "%s" for c in COLUMNS)
UPSERT = (
    f"INSERT INTO {{table}} AS existing ({', '.join(COLUMNS)}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 - constant text
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
    + " WHERE existing.version < EXCLUDED.version"
)
"""A row, unless the table has a newer version of it: a row never goes back."""
COPY = f"COPY {{table}} ({', '.join(COLUMNS)}) FROM STDIN"

_READ = "customer_id, version, position, view, ops"
SELECT_BY_IDS = f"SELECT {_READ} FROM {{table}} WHERE id = ANY(%s)"  # noqa: S608 - constant text
SELECT_PAGE = {
    key: (
        "SELECT matching.total, page.* FROM"  # noqa: S608 - constant text
        f" (SELECT count(*) AS total FROM {{table}} WHERE {where}) AS matching"
        f" LEFT JOIN LATERAL (SELECT {_READ} FROM {{table}} WHERE {where}"
        f" ORDER BY {order} LIMIT %s OFFSET %s) AS page ON true"
    )
    for key, where, order in (
        ("customer", "customer_id = %s", "created_at DESC, id DESC"),
        ("status", "status = ANY(%s)", "created_at, id"),
        ("attention", "needs_attention AND %s", "created_at, id"),
    )
}
"""One statement, one snapshot: the total and the page agree, even on an empty page."""
