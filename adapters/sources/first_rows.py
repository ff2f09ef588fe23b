"""Which row of a large file first holds each key (a booking number), in about 8 bytes a row.

Planning a jail CSV unit must know, for every booking number, the first well-formed row that holds it (later
rows with it are duplicates; charge rows go to that row's window). A dict of every number costs ~90 bytes a
booking, ~90 MB for a million-row file; this index keeps one 64-bit integer per row instead: a 32-bit
bucket of the key (CRC-32) and the row number, sorted once the file is scanned.

Buckets are not keys, so the index is made exact by looking keys up again (``key_at(row)``, which re-reads
the row from the file) whenever a bucket holds more than one row: a repeated key or a rare collision (about
a hundred bucket pairs in a million rows). The one answer left unchecked is :meth:`FirstRows.first_row` for
a key whose bucket holds exactly one row, which is that row whenever the key is in the file at all; a
caller that gives it a key that may be missing (a charge row's booking number) must check the row it gets.
"""
from __future__ import annotations

import heapq
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator

_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1
_SORT_CHUNK = 1 << 16


def bucket_of(key: bytes) -> int:
    """The 32-bit bucket of a key."""
    return zlib.crc32(key)


class FirstRows:
    """Rows added in file order, each with its key; after :meth:`freeze`, first rows and duplicates."""

    def __init__(self, key_at: Callable[[int], bytes]) -> None:
        """``key_at(row)`` re-reads the key of a row that was added (used only to tell apart a bucket's rows)."""
        self._entries = array("Q")
        self._key_at = key_at
        self._resolved: dict[int, dict[bytes, int]] = {}

    def add(self, key: bytes, row: int) -> None:
        """Remember that ``row`` holds ``key`` (rows in increasing order, each at most once)."""
        if not 0 <= row <= _ROW_MASK:
            raise ValueError("row numbers must fit in 32 bits")
        self._entries.append(bucket_of(key) << _ROW_BITS | row)

    def freeze(self) -> None:
        """Sort the entries (in chunks merged back, so the sort never holds more than two copies as arrays)."""
        entries = self._entries
        chunks = [array("Q", sorted(entries[i:i + _SORT_CHUNK])) for i in range(0, len(entries), _SORT_CHUNK)]
        del entries[:]
        self._entries = array("Q", heapq.merge(*chunks))

    def duplicates(self) -> Iterator[int]:
        """Rows whose key an earlier row holds, grouped by bucket (not in row order)."""
        entries, at = self._entries, 0
        while at < len(entries):
            bucket = entries[at] >> _ROW_BITS
            end = at + 1
            while end < len(entries) and entries[end] >> _ROW_BITS == bucket:
                end += 1
            if end - at > 1:
                first = self._resolve(bucket, at, end)
                for entry in entries[at:end]:
                    row = entry & _ROW_MASK
                    if first[self._key_at(row)] != row:
                        yield row
            at = end

    def first_row(self, key: bytes) -> int | None:
        """The first row holding ``key``; None if no row does. A bucket of one row answers with that row
        unchecked (see the module docstring)."""
        bucket = bucket_of(key)
        at = bisect_left(self._entries, bucket << _ROW_BITS)
        end = bisect_left(self._entries, (bucket + 1) << _ROW_BITS, at)
        if end == at:
            return None
        if end - at == 1:
            return self._entries[at] & _ROW_MASK
        return self._resolve(bucket, at, end).get(key)

    def _resolve(self, bucket: int, at: int, end: int) -> dict[bytes, int]:
        """Key -> first row, for a bucket of several rows (read back once, then kept)."""
        first = self._resolved.get(bucket)
        if first is None:
            first = {}
            for entry in self._entries[at:end]:  # in row order within a bucket
                first.setdefault(self._key_at(entry & _ROW_MASK), entry & _ROW_MASK)
            self._resolved[bucket] = first
        return first
