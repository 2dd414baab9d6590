"""Counting what a run loads: the distinct primary keys each collection hands to dlt.

A listing page may repeat an item of the page before, and a restarted Retrieve reads again
the rows it had read: rows handed over are not rows landed. The keys are kept (hashed) until
the collection's last page, when the count becomes the number of distinct keys, and whether
any came twice tells the load to deduplicate its staged rows.
"""

from __future__ import annotations

import tempfile
import weakref
from array import array
from collections import Counter
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from sfmc_source.specs import Collection

# The marker column of rows that delete (a campaign's assets), which load nothing.
DELETED = "_sfmc_deleted"


class UniqueKeys:
    """The primary keys of every page loaded, hashed to 64 bits (a bigint key as it is) and
    kept in a temporary file (held in memory, even a copy of them pins the pages' memory)
    until ``distinct`` counts them. A hash collision counts two keys as one: among a million
    keys, about one run in thirty million."""

    def __init__(self, collection: Collection) -> None:
        self.key = list(collection.primary_key)
        self.added = 0
        self.file = tempfile.TemporaryFile()  # noqa: SIM115  # open across pages, closed with self
        weakref.finalize(self, self.file.close)

    def add(self, page: pa.Table) -> None:
        self.added += page.num_rows
        if len(self.key) == 1 and pa.types.is_int64(page.schema.field(self.key[0]).type):
            for chunk in page[self.key[0]].chunks:
                values = chunk.buffers()[1]
                assert values is not None
                start, end = chunk.offset * 8, (chunk.offset + len(chunk)) * 8
                self.file.write(memoryview(values)[start:end])
            return
        columns = [page[k].to_pylist() for k in self.key]
        keys = columns[0] if len(columns) == 1 else zip(*columns, strict=True)
        self.file.write(array("q", map(hash, keys)).tobytes())

    def distinct(self) -> int:
        """How many different keys were added so far (more may be added after)."""
        self.file.seek(0)
        data = pa.py_buffer(self.file.read())  # and the file is at its end again
        every = pa.Array.from_buffers(pa.int64(), len(data) // 8, [None, data])
        return int(pc.count_distinct(every).as_py())


class Tally:
    """The rows each collection of a run hands to dlt (``counts``, by name); ``on_rows``
    hears the collection's name each time it hands over more."""

    def __init__(self, counts: Counter[str], on_rows: Callable[[str], None] | None = None) -> None:
        self.counts = counts
        self.on_rows = on_rows
        self.keys: dict[str, UniqueKeys] = {}

    def add(self, collection: Collection, page: pa.Table) -> pa.Table:
        """``page`` on its way to dlt, the keys of the rows it loads tallied; the count grows
        by those rows until ``settle`` makes it the collection's distinct keys."""
        keys = self.keys.setdefault(collection.name, UniqueKeys(collection))
        loading = _loading(page)
        keys.add(loading)
        self.counts[collection.name] += loading.num_rows
        if self.on_rows is not None:
            self.on_rows(collection.name)
        return page

    def settle(self, collection: Collection) -> bool:
        """The collection's count becomes the distinct keys it loaded this run. Whether any
        key came twice."""
        keys = self.keys.get(collection.name)
        if keys is None:
            return False
        self.counts[collection.name] = keys.distinct()
        return self.counts[collection.name] < keys.added

    def repeated(self, collection: Collection) -> bool:
        """Whether a key of the collection came twice (once it is settled)."""
        keys = self.keys.get(collection.name)
        return keys is not None and self.counts[collection.name] < keys.added

    def settled(self, collection: Collection, page: pa.Table) -> pa.Table:
        """A transformer's page, counted and settled: a transformer has no last page."""
        self.add(collection, page)
        self.settle(collection)
        return page


def _loading(page: pa.Table) -> pa.Table:
    """The rows of a page that load: not the markers that delete a campaign's assets."""
    if DELETED not in page.column_names:
        return page
    return page.filter(pc.is_null(page[DELETED]))
