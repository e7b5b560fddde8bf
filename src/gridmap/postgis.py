"""Layers read from PostGIS, and a plan written to it, as city platforms keep them.

A layer is named by a URL and a table: ``postgresql://user:pw@host:5432/db#schema.table``
(``#table`` for the ``public`` schema), or in Python by a SQLAlchemy engine (or
connection) and a table name, ``(engine, "schema.table")``.  A table with a
geometry column is read as a GeoDataFrame in its SRID; one without (a register)
as a DataFrame.

Tables are written to a schema (``postgresql://...#schema``) in one transaction
(:func:`write_tables`): only those named are replaced, and a failure leaves the
schema as it was (a plan's: :meth:`gridmap.GridPlan.to_postgis`).

Needs SQLAlchemy, GeoAlchemy2 and a PostgreSQL driver: ``pip install
"gridmap[postgis]"``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import pandas as pd

from ._errors import LayerValidationError, OptionError

__all__ = ["is_database", "read_database", "read_tables", "write_tables"]

_SCHEMES = ("postgresql://", "postgres://", "postgresql+")


def is_database(source: Any) -> bool:
    """Whether a layer source (or an output) names a PostGIS table or schema.

    Examples
    --------
    >>> is_database("postgresql://gridmap@localhost/city#public.buildings")
    True
    >>> is_database("data/shanghai_bund.gpkg")
    False
    """
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str):
        return hasattr(source[0], "dialect") or hasattr(source[0], "engine")
    return isinstance(source, str) and source.lower().startswith(_SCHEMES)


def _sqlalchemy() -> Any:
    try:
        sqlalchemy = importlib.import_module("sqlalchemy")
        importlib.import_module("geoalchemy2")
    except ImportError as exc:
        msg = ("reading or writing PostGIS needs SQLAlchemy, GeoAlchemy2 and a PostgreSQL "
               "driver: pip install \"gridmap[postgis]\".")
        raise OptionError(msg) from exc
    return sqlalchemy


def _where(source: Any, what: str = "table") -> tuple[Any, str, str | None]:
    """The engine (or connection), the schema and the table (None for a schema)."""
    sqlalchemy = _sqlalchemy()
    if isinstance(source, tuple):
        con, name = source
    else:
        url, _, name = str(source).partition("#")
        if not name:
            msg = (f"a PostGIS {what} is named after '#': {url}#"
                   + ("schema.table" if what == "table" else "schema") + f", got {source!r}.")
            raise OptionError(msg)
        con = sqlalchemy.create_engine(url.replace("postgres://", "postgresql://", 1))
    if what == "schema":
        return con, name, None
    schema, _, table = name.rpartition(".")
    return con, schema or "public", table


def _shown(source: Any) -> str:
    """A source as said in messages: its URL without the password."""
    if isinstance(source, tuple):
        return f"table {source[1]!r} of {source[0]!r}"
    url, _, name = str(source).partition("#")
    head, at, tail = url.rpartition("@")
    if at:
        scheme, _, user = head.partition("://")
        url = f"{scheme}://{user.split(':')[0]}:***@{tail}"
    return f"{url}#{name}"


def _geometry_column(con: Any, schema: str, table: str) -> str | None:
    sqlalchemy = _sqlalchemy()
    q = sqlalchemy.text("SELECT f_geometry_column FROM geometry_columns "
                        "WHERE f_table_schema = :s AND f_table_name = :t")
    with _connected(con) as c:
        rows = c.execute(q, {"s": schema, "t": table}).fetchall()
    return str(rows[0][0]) if rows else None


@contextlib.contextmanager
def _transaction(con: Any) -> Iterator[Any]:
    """A connection in a transaction: committed at the end, rolled back on error."""
    if hasattr(con, "execute"):  # a connection: a transaction on it
        with con.begin():
            yield con
    else:  # an engine: a connection of its own, in a transaction
        with con.begin() as c:
            yield c


@contextlib.contextmanager
def _connected(con: Any) -> Iterator[Any]:
    """The connection given, or one from the engine given (closed after)."""
    if hasattr(con, "execute"):
        yield con
    else:
        with con.connect() as c:
            yield c


def read_database(source: Any, *, role: str = "layer") -> gpd.GeoDataFrame | pd.DataFrame:
    """A table of PostGIS: a GeoDataFrame where it has geometry, else a DataFrame.

    ``source``: ``postgresql://...#schema.table`` or ``(engine, "schema.table")``.
    """
    con, schema, table = _where(source)
    assert table is not None
    sqlalchemy = _sqlalchemy()
    try:
        if not _exists(con, schema, table):
            msg = (f"`{role}` could not be read from PostGIS ({_shown(source)}): no table "
                   f"{schema}.{table}; the schema's tables are {_tables(con, schema)}.")
            raise LayerValidationError(msg)
        geom = _geometry_column(con, schema, table)
        quoted = f'"{schema}"."{table}"'
        with _connected(con) as c:
            if geom is not None:
                return gpd.read_postgis(sqlalchemy.text(f"SELECT * FROM {quoted}"), c,
                                        geom_col=geom)
            return pd.read_sql(sqlalchemy.text(f"SELECT * FROM {quoted}"), c)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        msg = (f"`{role}` could not be read from PostGIS ({_shown(source)}): "
               f"{str(exc).splitlines()[0]}")
        raise LayerValidationError(msg) from exc


def write_tables(target: Any, tables: dict[str, pd.DataFrame | None]) -> list[str]:
    """Write ``tables`` into a schema, in one transaction; the tables written.

    ``target``: ``postgresql://...#schema`` or ``(engine, "schema")``.  Every
    table named is dropped and, unless None, written anew (a GeoDataFrame with
    its geometry and SRID); no other table is touched; the schema is made if
    missing; a failure leaves the schema as it was.
    """
    con, schema, _ = _where(target, "schema")
    sqlalchemy = _sqlalchemy()
    written = []
    try:
        with _transaction(con) as c:
            c.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            for name, frame in tables.items():
                c.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{schema}"."{name}"'))
                if frame is None:
                    continue
                if isinstance(frame, gpd.GeoDataFrame):
                    frame.to_postgis(name, c, schema=schema, index=False)
                else:
                    pd.DataFrame(frame).to_sql(name, c, schema=schema, index=False)
                written.append(f"{schema}.{name}")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        msg = (f"could not write to PostGIS ({_shown(target)}); nothing was changed: "
               f"{str(exc).splitlines()[0]}")
        raise OptionError(msg) from exc
    return written


def read_tables(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The tables of ``names`` a schema has (``postgresql://...#schema``), read."""
    con, schema, _ = _where(source, "schema")
    return {name: read_database((con, f"{schema}.{name}"), role=name) for name in names
            if _exists(con, schema, name)}


def _exists(con: Any, schema: str, table: str) -> bool:
    sqlalchemy = _sqlalchemy()
    q = sqlalchemy.text("SELECT 1 FROM information_schema.tables "
                        "WHERE table_schema = :s AND table_name = :t")
    with _connected(con) as c:
        return bool(c.execute(q, {"s": schema, "t": table}).fetchall())


def _tables(con: Any, schema: str) -> list[str]:
    sqlalchemy = _sqlalchemy()
    q = sqlalchemy.text("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = :s ORDER BY table_name")
    with _connected(con) as c:
        return [str(r[0]) for r in c.execute(q, {"s": schema}).fetchall()]
