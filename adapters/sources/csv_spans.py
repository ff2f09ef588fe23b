"""CSV records with the byte span each came from: scan a large file once, then parse any span of it alone.

A file-drop source plans a large CSV file once (:func:`scan`, streaming, memory independent of the file's
size) and remembers where each window's records lie; reading a window then seeks to its span and parses
only those bytes (:func:`parse`), so reading a file window by window costs the same per record whatever
the file's size.

Records are the ``csv`` module's, exactly as a ``csv.reader`` over the whole decoded text (``newline=""``)
would return them: physical lines end at ``\\n``, ``\\r\\n`` or ``\\r``; a quoted field may span lines; a
record the reader refuses (an oversized field) is None, and reading goes on with the next line. That holds
only for encodings in which those line-end bytes mean line ends and nothing else (:func:`byte_lines_ok`:
UTF-8, Latin-1, cp1252 and every other ASCII-compatible encoding; not UTF-16).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

_CHUNK = 1 << 20
_LINE_END = re.compile(rb"\r\n|\r|\n")


def byte_lines_ok(codec: str) -> bool:
    """True if ``codec`` writes line ends and ASCII as single ASCII bytes (byte offsets then split lines)."""
    try:
        encoder = codecs.getincrementalencoder(codec)()
    except LookupError:
        return False
    encoder.encode("a")  # a byte-order mark, if the codec writes one, comes out here
    return encoder.encode("\r\n,|a") == b"\r\n,|a"


def _lines(handle: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(physical line with its line end, is the last line) from the handle's position to its end."""
    pending = b""
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            if pending:
                yield pending, True
            return
        buffer = pending + chunk
        taken = 0
        for match in _LINE_END.finditer(buffer):
            if match.end() == len(buffer) and match.group() == b"\r":
                break  # may be the first half of a \r\n split between chunks
            yield buffer[taken:match.end()], False
            taken = match.end()
        pending = buffer[taken:]


class _Lines:
    """Decoded physical lines for ``csv.reader``, keeping the byte offset and the raw bytes consumed."""

    def __init__(self, handle: BinaryIO, codec: str) -> None:
        self._source = _lines(handle)
        # A byte-order mark is only one at the very start of a file: a span in the middle keeps the character.
        if handle.tell() > 0 and codecs.lookup(codec).name == "utf-8-sig":
            codec = "utf-8"
        self._decoder = codecs.getincrementaldecoder(codec)(errors="surrogateescape")
        self.offset = handle.tell()
        self.raw: list[bytes] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = ""
        while not text:  # a line that decodes to nothing (a lone byte-order mark) is no line for csv
            line, last = next(self._source)
            self.offset += len(line)
            self.raw.append(line)
            text = self._decoder.decode(line, final=last)
        return text


def scan(handle: BinaryIO, codec: str, delimiter: str) -> Iterator[tuple[int, bytes, list[str] | None]]:
    """(start offset, raw bytes, record) of every record from the handle's position to the end of the file."""
    lines = _Lines(handle, codec)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        start = lines.offset
        try:
            record: list[str] | None = next(reader)
        except StopIteration:
            return
        except csv.Error:
            record = None
        raw = b"".join(lines.raw)
        lines.raw.clear()
        yield start, raw, record


def parse(handle: BinaryIO, start: int, end: int, codec: str, delimiter: str,
          check: Callable[[bytes], object] | None = None) -> list[list[str] | None]:
    """The records of bytes ``start`` to ``end`` (a span :func:`scan` gave); their bytes go to ``check``.

    A span is a window's worth of records, so it is read and decoded in one piece: the same records as
    :func:`scan` over the span (``newline=""`` splits lines where :func:`_lines` does, and decoding a span
    whole gives what decoding it line by line gives), without a Python call per line. Every byte of a span
    :func:`scan` gave belongs to one of its records, so ``check`` sees the bytes it would have, in one piece.
    """
    handle.seek(start)
    data = handle.read(max(0, end - start))
    if check is not None:
        check(data)
    # As in _Lines: a byte-order mark is only one at the very start of a file.
    if start > 0 and codecs.lookup(codec).name == "utf-8-sig":
        codec = "utf-8"
    return records_of(data.decode(codec, errors="surrogateescape"), delimiter)


def records_of(text: str, delimiter: str) -> list[list[str] | None]:
    """Every CSV record of ``text`` (``newline=""``); None for a record the reader refuses (an oversized
    field), as :func:`scan` does: reading goes on with the next line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str] | None] = []
    while True:
        try:
            records.append(next(reader))
        except StopIteration:
            return records
        except csv.Error:
            records.append(None)


def sniff(handle: BinaryIO) -> str:
    """Comma or pipe, whichever the first line (up to the first ``\\n``) holds more of (ties: comma)."""
    handle.seek(0)
    commas = pipes = 0
    while chunk := handle.read(_CHUNK):
        line = chunk.split(b"\n", 1)[0]
        commas, pipes = commas + line.count(b","), pipes + line.count(b"|")
        if len(line) < len(chunk):
            break
    return "|" if pipes > commas else ","


class HashingReader:
    """A file read from its start that hashes every byte read through it (:meth:`hexdigest` reads the rest)."""

    def __init__(self, handle: BinaryIO) -> None:
        handle.seek(0)
        self._handle = handle
        self._digest = hashlib.sha256()

    def tell(self) -> int:
        return self._handle.tell()

    def read(self, size: int) -> bytes:
        chunk = self._handle.read(size)
        self._digest.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        """SHA-256 of the whole file as read through this reader (what was not read yet is read now)."""
        while self.read(_CHUNK):
            pass
        return self._digest.hexdigest()
