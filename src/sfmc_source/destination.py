"""Where a sync loads: the ``--destination`` and ``--schema`` a user typed, parsed once.

A warehouse has one identity however it is spelled. ``duckdb:///w.duckdb`` is resolved against
the current directory on every run, with ``.``, ``..`` and symlinks resolved, so
``duckdb:///./w.duckdb`` typed in ``/data`` and ``duckdb:////data/w.duckdb`` are one file; a
Postgres URL is its user, host, port and database, never its password; any other dlt
destination is its name. The identity names the dlt pipeline (and so its local state) and the
lock that keeps two syncs of one warehouse and schema apart. ``display`` is what output
shows: the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import SplitResult, quote, unquote, urlsplit

from sfmc_source.errors import ConfigError, SfmcError
from sfmc_source.redaction import REDACTED, redact_url

# DuckDB runs inside this process; without a cap a merge of a million rows takes gigabytes.
# Beyond the cap it spills to a temporary file beside the database.
DUCKDB_MEMORY_LIMIT = "64MB"
DEFAULT_DESTINATION = "duckdb:///./sfmc_warehouse.duckdb"
DEFAULT_SCHEMA = "sfmc"
POSTGRES_PORT = 5432
CONNECT_TIMEOUT = 30  # seconds
# SQL in, rows out: what status and check ask a warehouse.
Query: TypeAlias = Callable[[str], Sequence[Sequence[Any]]]
# Postgres names are at most 63 characters, and dlt stages merges in "<schema>_staging".
MAX_SCHEMA_LENGTH = 63 - len("_staging")
_SCHEMA = re.compile(rf"[a-z_][a-z0-9_]{{0,{MAX_SCHEMA_LENGTH - 1}}}")
SCHEMA_RULE = (
    f"lowercase letters, digits and _, not starting with a digit, at most {MAX_SCHEMA_LENGTH}"
)


def schema_name(text: str) -> str:
    """The dataset the tables land in: ``--schema`` lower-cased, or a usage error naming the
    rule. ``Prod`` and ``prod`` are one schema everywhere: sync, status and check."""
    name = text.strip().lower()
    if not _SCHEMA.fullmatch(name):
        raise ConfigError(f"--schema {text!r}: use {SCHEMA_RULE} characters")
    return name


@dataclass(frozen=True)
class Warehouse:
    """A parsed ``--destination``: ``kind`` is duckdb, postgres or a dlt destination name."""

    kind: str
    identity: str  # never holds a password
    display: str  # what output shows
    url: str = field(repr=False)  # what dlt connects with, password included
    path: Path | None = None  # the DuckDB file
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, cwd: Path | None = None) -> Warehouse:
        """``duckdb:///path`` (relative to ``cwd``, default the current directory),
        ``postgresql://user:pass@host:port/db`` or a dlt destination name."""
        parts = urlsplit(text.strip())
        if parts.scheme == "duckdb":
            return _duckdb(text, cwd or Path.cwd())
        if parts.scheme in ("postgresql", "postgres"):
            return _postgres(text, parts)
        if parts.scheme or not re.fullmatch(r"[a-z][a-z0-9_.]*", text.strip()):
            raise ConfigError(
                f"--destination {redact_url(text)!r}: use duckdb:///path, "
                "postgresql://user:pass@host:port/db or a dlt destination name "
                "(bigquery, snowflake, redshift, ...)"
            )
        return cls(text.strip(), text.strip(), text.strip(), text.strip())

    def pipeline_name(self, schema: str) -> str:
        """One dlt pipeline, and so one local state, per warehouse and schema."""
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:10]
        return f"sfmc_source_{schema}_{digest}"

    def secrets(self) -> list[str]:
        return [self.password] if self.password else []

    def require_directory(self) -> None:
        """A DuckDB file can be created only in a directory that exists."""
        if self.path is not None and not self.path.parent.is_dir():
            raise ConfigError(
                f"--destination {self.display}: directory {self.path.parent} does not exist"
            )

    def check_names(self, schema: str) -> None:
        """DuckDB names a file's catalog after the file, and a catalog and a schema of the
        same name make every two-part table name ambiguous."""
        if self.path is not None and self.path.stem == schema:
            raise ConfigError(
                f"DuckDB cannot hold schema {schema!r} in a file named {schema}.duckdb (the "
                "file becomes a catalog of the same name); use another --schema or file name"
            )

    @contextmanager
    def sql(self, schema: str, read_only: bool = False) -> Iterator[Query]:
        """SQL against the warehouse: DuckDB and Postgres directly (``read_only`` opens DuckDB
        read-only and never creates a missing file), other destinations through dlt."""
        if self.kind == "duckdb":
            with _duckdb_sql(self, read_only) as query:
                yield query
        elif self.kind == "postgres":
            with _postgres_sql(self, read_only) as query:
                yield query
        else:
            from sfmc_source.sync import pipeline_for

            with pipeline_for(self, schema).sql_client() as client:
                yield lambda text: client.execute_sql(text) or []

    def dlt_destination(self) -> Any:
        """The dlt destination, its configuration resolved: a dlt destination without its
        credentials is one line naming the keys to set."""
        import dlt
        from dlt.common.destination import Destination
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        if self.kind == "duckdb":
            config = {"memory_limit": DUCKDB_MEMORY_LIMIT}
            return dlt.destinations.duckdb(DuckDbCredentials(str(self.path), global_config=config))
        if self.kind == "postgres":
            return postgres_destination(self.url)
        try:
            destination = Destination.from_reference(self.kind)
        except Exception:
            raise ConfigError(
                f"--destination {self.kind!r} is not a destination dlt knows"
            ) from None
        _require_configuration(destination)
        return destination


def postgres_destination(credentials: Any) -> Any:
    """dlt's Postgres destination for ``credentials`` (a URL or dlt's credentials), loading
    Arrow pages by binary ``COPY`` with ``''`` kept apart from ``NULL`` (``postgres_copy``)."""
    from sfmc_source.postgres_copy import PostgresCopy

    return PostgresCopy(credentials=credentials)


def loader_file_format(destination: Any) -> str | None:
    """What ``pipeline.run`` is told to write: nothing, so that each table gets what its
    destination picks; but ``INSERT`` on a Postgres not made by ``postgres_destination``, which
    would copy Arrow pages in as CSV, turning ``''`` into ``NULL``."""
    from sfmc_source.postgres_copy import PostgresCopy

    if destination.destination_type != "dlt.destinations.postgres":
        return None
    return None if isinstance(destination, PostgresCopy) else "insert_values"


@contextmanager
def _duckdb_sql(warehouse: Warehouse, read_only: bool) -> Iterator[Query]:
    import duckdb

    assert warehouse.path is not None
    if read_only and not warehouse.path.is_file():
        raise SfmcError(f"no warehouse at {warehouse.path}")
    with duckdb.connect(str(warehouse.path), read_only=read_only) as con:
        yield lambda sql: con.execute(sql).fetchall()


@contextmanager
def _postgres_sql(warehouse: Warehouse, read_only: bool) -> Iterator[Query]:
    import psycopg2  # type: ignore[import-untyped]

    connection = psycopg2.connect(warehouse.url, connect_timeout=CONNECT_TIMEOUT)
    try:
        connection.set_session(readonly=read_only, autocommit=True)
        with connection.cursor() as cursor:

            def query(sql: str) -> Sequence[Sequence[Any]]:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []

            yield query
    finally:
        connection.close()


def _duckdb(text: str, cwd: Path) -> Warehouse:
    raw = text.strip().split("duckdb:///", 1)[-1] if "duckdb:///" in text else ""
    if not raw:
        raise ConfigError(f"--destination {text!r}: use duckdb:///path/to/file.duckdb")
    path = Path(os.path.realpath(cwd / Path(raw).expanduser()))
    url = f"duckdb:///{path}"
    return Warehouse("duckdb", url, url, url, path)


def _postgres(text: str, parts: SplitResult) -> Warehouse:
    if not parts.hostname or not parts.username or len(parts.path) < 2:
        raise ConfigError(
            f"--destination {redact_url(text)!r}: use postgresql://user:pass@host:port/database"
        )
    try:
        port = parts.port or POSTGRES_PORT
    except ValueError:
        raise ConfigError(f"--destination {redact_url(text)!r}: the port is not a number") from None
    user, host, database = unquote(parts.username), parts.hostname, parts.path.lstrip("/")
    password = unquote(parts.password) if parts.password is not None else ""
    where = f"{host}:{port}/{database}"
    identity = f"postgresql://{quote(user)}@{where}"
    display = f"postgresql://{quote(user)}:{REDACTED}@{where}" if password else identity
    # dlt wants a password in the URL even where the server trusts the user
    url = f"postgresql://{quote(user)}:{quote(password, safe='')}@{where}"
    if parts.query:
        url, identity, display = (f"{u}?{parts.query}" for u in (url, identity, display))
    return Warehouse("postgres", identity, display, url, password=password or None)


def _require_configuration(destination: Any) -> None:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    try:
        destination.configuration(None, accept_partial=False)
    except ConfigFieldMissingException as exc:
        keys = [key for name, traces in exc.traces.items() for key in _keys(name, traces)]
        if keys:
            raise ConfigError(
                f"--destination {destination.destination_name}: dlt has no configuration for "
                f"it; set {', '.join(keys)} (environment or .dlt/secrets.toml)"
            ) from None


def _keys(name: str, traces: Any) -> list[str]:
    """The environment variable dlt reads first for each missing field (the first of a
    union's variants); fields only code can set (the dataset name) are not the user's."""
    if not traces:
        return []
    first = traces[0]
    if hasattr(first, "traces"):  # a nested configuration: its own missing fields
        return [key for field_name, t in first.traces.items() for key in _keys(field_name, t)]
    variables = [t.key for t in traces if t.provider == "Environment Variables"]
    return variables[:1]
