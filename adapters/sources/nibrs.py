"""NIBRS exports an agency's RMS writes for the state UCR program: the legacy flat file and NIBRS IEPD XML.

Both yield :class:`Arrest` records (Group A arrestees and Group B arrests) through
:mod:`transforms.model.nibrs`; NIBRS carries no names, so these records count, they do not link people.

* :class:`NibrsFlatFileSource`: a file or directory of flat files (``*.txt``). Windows are slices of at most
  ``max_records`` lines of a file; only arrestee segments (levels 6 and 7) yield anything, the other segments
  (incident, offense, property, victim, offender, zero report) are context this project does not carry.
  A line that cannot be decoded, is too short, or holds a bad value is a Rejected naming ``file#line=N`` and the
  specification's field name.
* :class:`NibrsXmlSource`: a file or directory of NIBRS IEPD submissions (``*.xml``), one window per file,
  parsed only through :func:`niem_iepd.safexml.parse` (no DTD, no entities, no network, size limit); a file that
  is not well-formed or not safe is one Rejected naming the file.

Both cursors list the SHA-256 of files fully done; ``.part``/``.tmp``/dot files are never read.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from niem_iepd.safexml import UnsafeXMLError, parse
from adapters.sources.done_cursor import read_done, write_done
from transforms.model import Arrest, RecordError, Rejected, RetryableError, SourceRef, Window
from transforms.model.nibrs import ARREST_LEVELS, arrest_from_flat_line, arrests_from_report, segment_level

PARTIAL_SUFFIXES = (".part", ".tmp")
MAX_XML_BYTES = 50_000_000


class _FileDrop:
    """Files of a drop (or one file), named relative to it, with a done-digest cursor."""

    def __init__(self, path: Path, pattern: str, operation: str) -> None:
        self.path = Path(path)
        self.pattern = pattern
        self.operation = operation

    def files(self) -> list[Path]:
        """Complete files of the drop, in name order."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise RetryableError(self.operation, "the drop path does not exist or is not mounted")
        return sorted(p for p in self.path.glob(self.pattern) if p.is_file() and not p.name.startswith(".")
                      and not p.name.lower().endswith(PARTIAL_SUFFIXES))

    def name(self, file: Path) -> str:
        """How a file is named in windows and references."""
        return file.name if self.path.is_dir() else str(file)

    def load(self, name: str, digest: str) -> bytes | None:
        """The file's bytes if unchanged since planning, else None."""
        file = self.path / name if self.path.is_dir() else self.path
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return None
        return data if hashlib.sha256(data).hexdigest() == digest else None

    def done(self, cursor: str | None) -> frozenset[str]:
        """The digests of files the cursor lists as done."""
        return read_done(cursor, self.operation)


def _changed(system: str, name: str) -> Rejected:
    return Rejected(RecordError(str(SourceRef(system, name)), "(file)",
                                "changed or vanished after planning; planned anew next run"))


class NibrsFlatFileSource:
    """NIBRS legacy fixed-width flat files; arrestee segments become Arrest records."""

    def __init__(self, path: Path, *, system: str = "nibrs", pattern: str = "*.txt") -> None:
        """Read ``path`` (a flat file or a directory of them matching ``pattern``)."""
        self.system = system
        self._drop = _FileDrop(path, pattern, "nibrs_flat.plan")
        self._lines: tuple[str, list[bytes]] = ("", [])

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` lines over every file not yet done."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        done = self._drop.done(cursor)
        windows = []
        for file in self._drop.files():
            data = file.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in done:
                continue
            lines = len(data.splitlines())
            for start in range(1, lines + 1, max_records):
                stop = min(start + max_records - 1, lines)
                if stop == lines:
                    done = done | {digest}
                windows.append(Window(key=f"nibrs-flat:{digest[:24]}:lines={start}-{stop}", cursor_after=write_done(done),
                                      spec={"file": self._drop.name(file), "digest": digest, "start": start,
                                            "stop": stop}))
        return windows

    def read(self, window: Window) -> Iterator[Arrest | Rejected]:
        """An Arrest or a Rejected for every arrestee line (or unreadable line) of the window."""
        name, start, stop = window.spec["file"], int(window.spec["start"]), int(window.spec["stop"])
        data = self._drop.load(name, window.spec["digest"])
        if data is None:
            yield _changed(self.system, name)
            return
        if self._lines[0] != window.spec["digest"]:
            self._lines = (window.spec["digest"], data.splitlines())  # later windows of the file reuse the split
        for n, raw in enumerate(self._lines[1][start - 1:stop], start=start):
            # NIBRS flat files are ASCII; anything else is kept as surrogates and refused by the field checks.
            line = raw.decode("ascii", errors="surrogateescape")
            level = segment_level(line)
            if level not in ARREST_LEVELS and level.isdigit() and level <= "5" or not line.strip():
                continue  # incident, offense, property, victim, offender, zero report: context, not records
            ref = SourceRef(self.system, f"{name}#line={n}")
            try:
                yield arrest_from_flat_line(line, ref)
            except RecordError as error:
                yield Rejected(error)


class NibrsXmlSource:
    """NIBRS IEPD XML submissions; each j:Arrest becomes an Arrest record."""

    def __init__(self, path: Path, *, system: str = "nibrs", pattern: str = "*.xml") -> None:
        """Read ``path`` (a submission file or a directory of them matching ``pattern``)."""
        self.system = system
        self._drop = _FileDrop(path, pattern, "nibrs_xml.plan")

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """One window per submission file not yet done."""
        done = self._drop.done(cursor)
        windows = []
        for file in self._drop.files():
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            if digest in done:
                continue
            done = done | {digest}
            windows.append(Window(key=f"nibrs-xml:{digest[:24]}", cursor_after=write_done(done),
                                  spec={"file": self._drop.name(file), "digest": digest}))
        return windows

    def read(self, window: Window) -> Iterator[Arrest | Rejected]:
        """The arrests of one submission, or one Rejected when the file is not safe, well-formed NIBRS XML."""
        name = window.spec["file"]
        data = self._drop.load(name, window.spec["digest"])
        if data is None:
            yield _changed(self.system, name)
            return
        where = str(SourceRef(self.system, name))
        try:
            root = parse(data, max_bytes=MAX_XML_BYTES).getroot()
        except UnsafeXMLError as error:
            yield Rejected(RecordError(where, "(xml)", f"refused by the safe XML parser: {error}"))
            return
        if root.tag.rsplit("}", 1)[-1] != "Submission":
            yield Rejected(RecordError(where, "(root)", "is not a nibrs:Submission"))
            return
        reports = [c for c in root if isinstance(c.tag, str) and c.tag.rsplit("}", 1)[-1] == "Report"]
        for i, report in enumerate(reports):
            for result in arrests_from_report(report, SourceRef(self.system, f"{name}#Report[{i}]")):
                yield Rejected(result) if isinstance(result, RecordError) else result
