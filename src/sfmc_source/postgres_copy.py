"""dlt's Postgres destination, loading Arrow pages at ``COPY`` speed with ``''`` kept apart
from ``NULL`` and memory bounded by a row group, not by a run.

Each table's load file is chosen when dlt normalizes it:

- parquet, which dlt copies in with the ADBC driver's binary ``COPY``: ``''`` stays ``''``;
- never CSV: dlt's CSV ``COPY`` names every nullable column in ``FORCE_NULL``, so ``''`` and
  ``""`` both land as ``NULL``;
- ``INSERT ... VALUES`` for a table with a json column (ADBC cannot write ``jsonb``, and dlt
  would create the column as ``json``), and for every table where dlt finds no ADBC driver.

dlt hands ADBC a whole parquet file, which ADBC's Python binding gathers into one Arrow table
before it copies a row: memory would grow with every row a run loads (a first sync of years
of events, of thousands of email bodies). Here each row group is copied on its own, as dlt
does for SQL Server.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.destination.capabilities import LoaderFileFormatSelector
from dlt.common.destination.client import LoadJob
from dlt.common.schema.typing import TTableSchema
from dlt.common.typing import TLoaderFileFormat
from dlt.destinations import postgres
from dlt.destinations.impl.postgres.postgres import PostgresClient, PostgresParquetCopyJob


class RowGroupCopyJob(PostgresParquetCopyJob):
    """dlt's parquet ``COPY``, a row group at a time."""

    _ingest_per_rowgroup = True


class PostgresCopyClient(PostgresClient):
    """dlt's Postgres client, copying parquet a row group at a time."""

    def create_load_job(
        self, table: Any, file_path: str, load_id: str, restore: bool = False
    ) -> LoadJob:
        job = super().create_load_job(table, file_path, load_id, restore)
        return RowGroupCopyJob(file_path) if isinstance(job, PostgresParquetCopyJob) else job


class PostgresCopy(postgres):
    """dlt's Postgres destination with the load files and the client described above; to dlt
    (and to a pipeline's state) it is the same destination."""

    @property
    def destination_type(self) -> str:
        return "dlt.destinations.postgres"

    @property
    def client_class(self) -> type[PostgresClient]:
        return PostgresCopyClient

    def _raw_capabilities(self) -> DestinationCapabilitiesContext:
        capabilities = super()._raw_capabilities()
        dlt_selects = capabilities.loader_file_format_selector
        # dlt's selector protocol has a static __call__, which mypy sees no partial match
        capabilities.loader_file_format_selector = partial(file_formats, dlt_selects)  # type: ignore[assignment]
        return capabilities


def file_formats(
    dlt_selects: LoaderFileFormatSelector,
    preferred: TLoaderFileFormat,
    supported: Sequence[TLoaderFileFormat],
    /,
    *,
    table_schema: TTableSchema,
) -> tuple[TLoaderFileFormat, list[TLoaderFileFormat]]:
    """The preferred and the allowed load files of one table, after dlt's own choice (which
    drops parquet when the ADBC driver is missing or disabled)."""
    _, supported = dlt_selects(preferred, supported, table_schema=table_schema)
    columns = table_schema.get("columns", {}).values()
    copy = "parquet" in supported and all(c.get("data_type") != "json" for c in columns)
    formats: list[TLoaderFileFormat] = [
        f for f in supported if f != "csv" and (copy or f != "parquet")
    ]
    return ("parquet" if copy else "insert_values"), formats
