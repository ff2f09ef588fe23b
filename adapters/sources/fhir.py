"""FHIR R4 file sources: Bundles (one JSON file each) and Bulk Data ``$export`` NDJSON directories.

Both yield :class:`ClinicalRecord` (one per Patient, with its behavioral-health Conditions, care plans, care
team and encounters) and :class:`ConsentRecord` (one per Consent), through the pure mapping in
:mod:`transforms.model.fhir`, or a :class:`Rejected` naming the file, the entry or line, and the element path.

* :class:`FhirBundleSource` reads a file or a directory of ``*.json`` Bundles (Synthea writes one transaction
  Bundle per patient). Windows of up to ``max_records`` files; the cursor lists the SHA-256 of files done, so a file
  re-sent unchanged is not read again and a changed one is.
* :class:`FhirNdjsonSource` reads a Bulk Data export directory (``Patient.ndjson``, ``Condition.ndjson``, ...,
  one resource per line, the type in the file name before the first dot). Windows are slices of at most
  ``max_records`` patients; each window reads its patients' lines of every file. Lines that cannot be read,
  and resources for a patient the export does not include, are reported with the export's last window. The
  cursor lists the digests of exports fully done.

Files whose names end in ``.part`` / ``.tmp`` or start with a dot are still being written and are never read.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

from adapters.sources.done_cursor import read_done, write_done
from transforms.model import ClinicalRecord, ConsentRecord, RecordError, Rejected, RetryableError, \
    SourceRef, Window
from transforms.model.fhir import CLINICAL_TYPES, patient_of, records_from_resources

MAX_FILE_BYTES = 256 * 1024 * 1024
"""A bundle or NDJSON file larger than this is refused (a runaway export, not a patient)."""
MAX_LINE_BYTES = 16 * 1024 * 1024
"""An NDJSON line longer than this is refused: no single resource we read is that large."""
PARTIAL_SUFFIXES = (".part", ".tmp")
_PATIENT_REF = re.compile(rb'"reference"\s*:\s*"(?:[^"]*/)?Patient/([^"/]+)"')

Item = ClinicalRecord | ConsentRecord | Rejected


def _complete(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and not path.name.lower().endswith(PARTIAL_SUFFIXES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_items(results) -> Iterator[Item]:  # noqa: ANN001 - iterator of record | RecordError
    for result in results:
        yield Rejected(result) if isinstance(result, RecordError) else result


def _parse(data: bytes, where: str) -> tuple[object, RecordError | None]:
    """JSON from bytes, or the RecordError saying why not (never quoting content)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, RecordError(where, "(file)", f"holds bytes that are not valid UTF-8 (at byte {exc.start})")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, RecordError(where, "(json)", f"is not valid JSON (line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        return None, RecordError(where, "(json)", "is nested too deeply")


class FhirBundleSource:
    """FHIR Bundles in a file or directory, one window per file, cursor by file digest."""

    def __init__(self, path: Path, *, today: date, system: str = "ehr", pattern: str = "*.json") -> None:
        """Read ``path`` (a Bundle file, or a directory of them matching ``pattern``); ``today`` bounds dates."""
        self.path = Path(path)
        self.today = today
        self.system = system
        self.pattern = pattern

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise RetryableError("fhir_bundle.plan", "the bundle path does not exist or is not mounted")
        return sorted(p for p in self.path.glob(self.pattern) if _complete(p))

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` bundle files not yet done, in name order.

        The cursor keeps only the digests of files still in the drop (a file archived away is forgotten, so the
        cursor stays as small as the drop; the same file dropped again later is read again, and the outbox
        refuses the repeated messages).
        """
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        done = read_done(cursor, "fhir_bundle.plan")
        pending: list[tuple[str, str]] = []
        present: set[str] = set()
        for file in self._files():
            digest = _sha256(file)
            present.add(digest)
            if digest not in done and digest not in {d for _, d in pending}:
                pending.append((file.name if self.path.is_dir() else str(file), digest))
        done = done & present
        windows = []
        for start in range(0, len(pending), max_records):
            chunk = pending[start:start + max_records]
            done = done | {d for _, d in chunk}
            key = hashlib.sha256("".join(d for _, d in chunk).encode()).hexdigest()[:24]
            windows.append(Window(key=f"bundles:{key}", cursor_after=write_done(done),
                                  spec={"files": [list(pair) for pair in chunk]}))
        return windows

    def read(self, window: Window) -> Iterator[Item]:
        """Every record of the window's bundles, or Rejected items; never raises for bad data."""
        for name, digest in window.spec["files"]:
            file = self.path / name if self.path.is_dir() else self.path
            where = str(SourceRef(self.system, name))
            try:
                data = file.read_bytes() if file.stat().st_size <= MAX_FILE_BYTES else None
            except FileNotFoundError:
                data = b""
            if data is None:
                yield Rejected(RecordError(where, "(file)", f"is larger than {MAX_FILE_BYTES} bytes"))
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                yield Rejected(RecordError(where, "(file)", "changed or vanished after planning; planned anew next run"))
                continue
            yield from self.read_bundle(data, name)

    def read_bundle(self, data: bytes, name: str) -> Iterator[Item]:
        """The records of one Bundle's bytes (``name`` locates them in references)."""
        where = str(SourceRef(self.system, name))
        bundle, error = _parse(data, where)
        if error is not None:
            yield Rejected(error)
            return
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            yield Rejected(RecordError(where, "resourceType", "is not Bundle"))
            return
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            yield Rejected(RecordError(where, "Bundle.entry", "is not an array"))
            return
        aliases: dict[str, str] = {}
        resources = []
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
                yield Rejected(RecordError(f"{where}#entry={i}", f"Bundle.entry[{i}].resource",
                                           "is not a FHIR resource (no resourceType)"))
                continue
            if resource["resourceType"] == "Patient" and isinstance(entry.get("fullUrl"), str):
                aliases[entry["fullUrl"]] = str(resource.get("id") or "")
            resources.append((f"{name}#entry={i}", resource))
        yield from _to_items(records_from_resources(resources, system=self.system, today=self.today,
                                                    aliases=aliases))


class FhirNdjsonSource:
    """A Bulk Data ``$export`` directory of NDJSON files, windowed by slices of patients."""

    def __init__(self, directory: Path, *, today: date, system: str = "ehr") -> None:
        """Read the export in ``directory``; ``today`` bounds dates."""
        self.directory = Path(directory)
        self.today = today
        self.system = system

    def _files(self) -> dict[str, Path]:
        if not self.directory.is_dir():
            raise RetryableError("fhir_ndjson.plan", "the export directory does not exist or is not mounted")
        return {p.name: p for p in sorted(self.directory.glob("*.ndjson")) if _complete(p)}

    def _digest(self, files: Mapping[str, Path]) -> str:
        lines = "".join(f"{name}\t{_sha256(path)}\n" for name, path in files.items())
        return hashlib.sha256(lines.encode()).hexdigest()

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` Patient lines over an export not yet done."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        done = read_done(cursor, "fhir_ndjson.plan")
        files = self._files()
        if not files:
            return []
        digest = self._digest(files)
        if digest in done:
            return []
        patients = files.get("Patient.ndjson")
        lines = sum(1 for _ in _lines(patients)) if patients else 0
        windows = []
        stops = list(range(1, lines + 1, max_records)) or [1]
        for start in stops:
            stop = max(min(start + max_records - 1, lines), start)
            last = start == stops[-1]
            windows.append(Window(
                key=f"ndjson:{digest[:24]}:lines={start}-{stop}",
                cursor_after=write_done(done | {digest}) if last else write_done(done),
                spec={"digest": digest, "start": start, "stop": stop, "last": last},
            ))
        return windows

    def read(self, window: Window) -> Iterator[Item]:
        """Records of the window's patients (and, with the last window, every line that could not be used)."""
        files = self._files()
        if self._digest(files) != window.spec["digest"]:
            yield Rejected(RecordError(str(SourceRef(self.system, self.directory.name)), "(export)",
                                       "changed after planning; planned anew next run"))
            return
        start, stop, last = int(window.spec["start"]), int(window.spec["stop"]), bool(window.spec["last"])
        wanted: set[str] = set()
        everyone: set[str] = set()
        resources: list[tuple[str, Mapping[str, object]]] = []
        if "Patient.ndjson" in files:
            for n, resource, error in self._resources(files["Patient.ndjson"], "Patient"):
                if error is not None:
                    if start <= n <= stop:
                        yield Rejected(error)
                    continue
                pid = patient_of(resource)
                everyone.add(pid)
                if start <= n <= stop:
                    wanted.add(pid)
                    resources.append((f"Patient.ndjson#line={n}", resource))
        for name, path in files.items():
            if name == "Patient.ndjson":
                continue
            kind = name.split(".", 1)[0]
            # Before the last window, only lines naming one of this window's patients need a full JSON parse;
            # the last window parses every line to report the unreadable ones and the orphans.
            only = None if last else wanted
            for n, resource, error in self._resources(path, kind, only=only):
                if error is not None:
                    if last:
                        yield Rejected(error)
                    continue
                if resource.get("resourceType") not in CLINICAL_TYPES:
                    continue
                pid = patient_of(resource)
                if pid in wanted:
                    resources.append((f"{name}#line={n}", resource))
                elif last and pid not in everyone:
                    yield Rejected(RecordError(str(SourceRef(self.system, f"{name}#line={n}")),
                                               f"{resource.get('resourceType')}.subject",
                                               "refers to a patient this export does not include"))
        yield from _to_items(records_from_resources(resources, system=self.system, today=self.today))

    def _resources(self, path: Path, kind: str, *, only: set[str] | None = None,
                   ) -> Iterator[tuple[int, Mapping[str, object], RecordError | None]]:
        """(line number, resource, error) for every non-blank line of an NDJSON file; with ``only``, just the
        lines that reference one of those patients (found by a byte search before any JSON parse)."""
        for n, raw in enumerate(_lines(path), start=1):
            if only is not None and (raw is None or not any(
                    m.decode("utf-8", "replace") in only for m in _PATIENT_REF.findall(raw))):
                continue
            where = str(SourceRef(self.system, f"{path.name}#line={n}"))
            if raw is None:
                yield n, {}, RecordError(where, "(line)", f"is longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            value, error = _parse(raw, where)
            if error is None and (not isinstance(value, Mapping) or value.get("resourceType") != kind):
                error = RecordError(where, "resourceType", f"is not {kind} (the file's resource type)")
            yield n, value if error is None else {}, error  # type: ignore[misc]


def _lines(path: Path) -> Iterator[bytes | None]:
    """The lines of a file as bytes (None for a line over :data:`MAX_LINE_BYTES`), without holding the file."""
    with path.open("rb") as handle:
        while True:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the oversized line
                    line = handle.readline(MAX_LINE_BYTES)
                yield None
                continue
            yield line


