"""HL7 v2 ADT messages dropped as files (one or many messages per file), parsed with hl7apy.

EHRs that only speak v2 send ADT feeds through an interface engine that writes them to a directory. Real feeds
separate segments with CR (the standard), LF or CRLF, and may keep MLLP framing bytes; all are accepted. A file
holds one message or a batch (FHS/BHS ... BTS/FTS, whose envelope segments are skipped); a message starts at
each ``MSH`` segment.

Windows are slices of at most ``max_records`` messages of a file; the cursor lists the SHA-256 of files fully
done. Each message must parse with hl7apy (tolerant validation, so a vendor's extra fields do not reject it);
its fields are then read by position from the message as sent and mapped by :mod:`transforms.model.hl7v2`; a message hl7apy refuses, or one the mapping cannot use, is a
:class:`Rejected` naming ``file#message=N`` and the segment field.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, tzinfo
from pathlib import Path

from adapters.sources.done_cursor import read_done, write_done
from transforms.model import ClinicalRecord, RecordError, Rejected, RetryableError, SourceRef, Window
from transforms.model.hl7v2 import READ_EVENTS, Encoding, event_of, record_from_adt

PARTIAL_SUFFIXES = (".part", ".tmp")
MAX_MESSAGE_CHARS = 1_000_000
"""An ADT message longer than this is refused (no single ADT event is that large)."""
_ENVELOPE = ("FHS", "BHS", "BTS", "FTS")


def split_messages(text: str) -> list[str]:
    """The messages of a file's text, each with CR segment separators (LF and CRLF accepted, MLLP stripped)."""
    text = text.replace("\x0b", "").replace("\x1c", "").replace("\r\n", "\r").replace("\n", "\r")
    messages: list[list[str]] = []
    for segment in text.split("\r"):
        if not segment.strip() or segment[:3] in _ENVELOPE:
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return ["\r".join(m) for m in messages]


class Hl7v2FileSource:
    """A directory (or one file) of HL7 v2 ADT messages."""

    def __init__(self, path: Path, *, today: date, system: str = "ehr-adt", pattern: str = "*.hl7",
                 default_tz: tzinfo | None = None, encoding: str = "utf-8") -> None:
        """Read ``path``; ``default_tz`` is the zone of times sent without an offset (refused when None);
        ``encoding`` decodes the files (MSH-18 names it; interface engines mostly write UTF-8 or Latin-1)."""
        self.path = Path(path)
        self.today = today
        self.system = system
        self.pattern = pattern
        self.default_tz = default_tz
        self.encoding = encoding

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise RetryableError("hl7v2.plan", "the drop directory does not exist or is not mounted")
        return sorted(p for p in self.path.glob(self.pattern) if p.is_file() and not p.name.startswith(".")
                      and not p.name.lower().endswith(PARTIAL_SUFFIXES))

    def _name(self, file: Path) -> str:
        return file.name if self.path.is_dir() else str(file)

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` messages over every file not yet done."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        done = read_done(cursor, "hl7v2.plan")
        windows = []
        for file in self._files():
            data = file.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in done:
                continue
            count = len(split_messages(data.decode(self.encoding, errors="surrogateescape")))
            if count == 0:
                continue
            for start in range(1, count + 1, max_records):
                stop = min(start + max_records - 1, count)
                if stop == count:
                    done = done | {digest}
                windows.append(Window(key=f"hl7:{digest[:24]}:messages={start}-{stop}", cursor_after=write_done(done),
                                      spec={"file": self._name(file), "digest": digest, "start": start, "stop": stop}))
        return windows

    def read(self, window: Window) -> Iterator[ClinicalRecord | Rejected]:
        """A record or a Rejected for every message of the window; never raises for bad data."""
        name, start, stop = window.spec["file"], int(window.spec["start"]), int(window.spec["stop"])
        file = self.path / name if self.path.is_dir() else self.path
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            data = b""
        if hashlib.sha256(data).hexdigest() != window.spec["digest"]:
            yield Rejected(RecordError(str(SourceRef(self.system, name)), "(file)",
                                       "changed or vanished after planning; planned anew next run"))
            return
        messages = split_messages(data.decode(self.encoding, errors="surrogateescape"))
        for n in range(start, stop + 1):
            yield self.read_message(messages[n - 1], f"{name}#message={n}")

    def read_message(self, text: str, locator: str) -> ClinicalRecord | Rejected:
        """One message's text -> a record or a Rejected (``locator`` names it in references)."""
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.exceptions import HL7apyException
        from hl7apy.parser import parse_message

        ref = SourceRef(self.system, locator)
        if len(text) > MAX_MESSAGE_CHARS:
            return Rejected(RecordError(str(ref), "(message)", f"is longer than {MAX_MESSAGE_CHARS} characters"))
        if not text.startswith("MSH") or len(text) < 8:
            return Rejected(RecordError(str(ref), "MSH", "the message does not start with an MSH segment"))
        enc = Encoding(text[3], *(text[4:8]))
        msh = text.split("\r", 1)[0].split(enc.field)
        msh.insert(1, enc.field)
        if event_of([msh], enc) not in READ_EVENTS:
            # Decided before the (costly) full parse: feeds carry many events this source does not read.
            return Rejected(RecordError(str(ref), "MSH-9", "is a trigger event this source does not read (reads: "
                                        + ", ".join(sorted(READ_EVENTS)) + ")"))
        try:
            parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
        except (HL7apyException, ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            return Rejected(RecordError(str(ref), "(message)", f"cannot be parsed as HL7 v2 ({type(exc).__name__})"))
        segments: list[list[str]] = []
        # Fields are read from the message as sent, not from hl7apy's re-serialisation: for v2.8 it drops fields
        # the version withdrew (EVN-1), which would shift every later field of the segment.
        for er7 in text.split("\r"):
            fields = er7.split(enc.field)
            if fields[0] == "MSH":
                fields.insert(1, enc.field)  # so that fields[n] is MSH-n, as for every other segment
            segments.append(fields)
        msh = segments[0] if segments else []
        control_id = msh[10] if len(msh) > 10 and msh[10].isprintable() and len(msh[10]) <= 64 else ""
        ref = SourceRef(self.system, locator, control_id)
        try:
            return record_from_adt(segments, enc, ref, today=self.today, default_tz=self.default_tz)
        except RecordError as error:
            return Rejected(error)


