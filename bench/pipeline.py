"""The whole pipeline per stage and end to end vs the cryptographic floor and a per-file shell script.

Run: ``.venv/bin/python -m bench.pipeline [--records 2000] [--sample 50] [--workers 2]`` (one size, every
stage), or ``.venv/bin/python -m bench.pipeline --scale 10000,100000,1000000 [--workers 2 [--machine]]``
(scaling). ``--signing-key ec-p256`` runs everything (our pipeline, the floor and the shell script) with an
ECDSA P-256 signing key instead of the dev PKI's default RSA-3072.

One size (``--records``), all in this process on the same generated data:

1. ``exchange.demo.generate`` writes a JMS drop of N bookings (seed 2026) to a temp dir, ``mint_dev_pki``
   mints RSA-3072 keys in a temp home, and a one-recipient exchange YAML (the demo's shape, recipient
   ``county-bh`` with the behavioral-health-provider profile, local outbox transport) is written beside them.
2. End to end: ``open_exchange`` + ``pipeline.plan`` / ``process_window`` (every window) / ``deliver``, wall
   time, on a fresh state database. Peak RSS (``resource.getrusage``) is read before and after.
3. Each stage alone, on a second fresh home so linking starts from an empty index as it did end to end:
   read (the source over every window), link (``PersonIndex.link_many``, 100 a transaction), map (the message
   builder), validate (``niem_iepd.validator``: XSD only, one message a call; XSD + Schematron, 100 a call as the
   pipeline does), redact (``disclosure.for_recipient``), sign, encrypt (``exchange.security`` with keys
   preloaded), outbox write (``Outbox.enqueue_many``, 100 a transaction), deliver (outbox to files). Each
   stage's input is the previous stage's output, kept in memory (this is a bench, the pipeline itself streams).
4. The floor: raw ``lxml`` ``XMLSchema.validate`` + raw python-xmlsec sign + encrypt (the same calls
   ``bench.security`` uses) of the same redacted documents in a tight loop. We print our end-to-end rate as a
   ratio of it (the issue's target: at least 0.6x per core).
5. The county script: ``xmllint --schema`` + ``xmlsec1 --sign`` + ``xmlsec1 --encrypt`` per file on a sample
   of the same documents (templates prepared beforehand, untimed), extrapolated to N; we print our speed-up
   (target: at least 50x).

6. With ``--workers N`` (N > 1): the process stage (``pipeline.plan`` + ``process_window`` for every window)
   once more on a fresh home, with the windows spread over a pool of N processes (``spawn``; each worker
   opens its own exchange on the same state database and calls ``process_window``, as Airflow's mapped
   ``process`` tasks do; the plan and the delivery stay in this process). We print the process stage's time
   on one core (from step 2) and with N workers, their ratio, and whether both runs delivered the same
   message ids. Worker start-up (imports, Saxon, schemas) happens before the clock starts.

Scaling (``--scale``): each size runs in two fresh subprocesses, one that generates the drop and one that
measures (step 2 only, plus step 6 with ``--workers``), so each size's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the measuring process, after the run) is that size's
own. We print, per size, the end-to-end time per message and the peak RSS, each as a ratio of the smallest
size's (near-linear time: time ratios near 1.00; flat memory: RSS ratios near 1.00).

With ``--scale ... --workers N --machine`` each size is timed the way ``niem-exchange run --workers N`` runs
on the whole machine instead: plan, every window processed over N worker processes, then delivery in the
parent, wall time from the plan to the last receipt (the one-core run is skipped, so 1,000,000 bookings take
one run, not two). Peak RSS is then the larger of the parent's and the largest worker's.

Rates are messages (or records, for read) per second of wall time, on one core except step 6. Results and the
bottlenecks they point at: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xmlsec
from lxml import etree

from bench.security import _raw_encrypt, _raw_sign, encryption_template
from exchange import disclosure, pipeline
from exchange.demo.generate import write_demo_drop
from exchange.runtime import Exchange, open_exchange
from exchange.security import SigningKeyType, encrypt, mint_dev_pki, sign
from exchange.state.outbox import NewMessage, QueuedMessage, message_id
from exchange.workers import end_with_parent
from niem_iepd import safexml, validator
from transforms.mapping import BUILDERS, MessageHeader
from transforms.model import Rejected, record_digest

SEED = 2026
WARM_UP = Path(validator.__file__).parent / "samples/booking-notification.xml"
RECIPIENT = "county-bh"
DEFAULT_SIGNING_KEY = SigningKeyType.RSA_3072.value
STAGES = ("read", "link", "map", "validate (XSD)", "validate (XSD+Schematron)", "redact", "sign", "encrypt",
          "outbox write", "deliver (outbox to files)", "end to end")
"""Row names of the table, in order (the smoke test checks every one is printed)."""

_CONFIG = """\
# Written by bench.pipeline: the demo exchange's shape with one recipient.
name: bench-booking
message_type: BookingNotification
sender: Example County Sheriff's Office
source:
  kind: jail_csv
  path: "{drop}"
  system: jail
recipients:
  - id: {recipient}
    organization: Example County Behavioral Health
    certificate: {certificate}
    transport: {{kind: outbox, path: var/outbox}}
    purpose: Continuity of care for active clients (data matching at booking)
    legal_basis: County jail / behavioral-health data-sharing agreement
    profile: behavioral-health-provider
signing:
  key: {signing_key}
  certificate: {signing_certificate}
state_url: sqlite:///var/state.db
index_secret: var/index.secret
batch_size: 100
schedule: "@hourly"
"""


@dataclass
class Row:
    """One line of the table: how many items a stage handled and how long it took."""

    name: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        """Items per second."""
        return self.count / self.seconds if self.seconds else float("inf")


@dataclass
class Result:
    """Everything one run at one size measured."""

    records: int
    rows: list[Row] = field(default_factory=list)
    messages: int = 0
    end_to_end: float = 0.0
    floor: float = 0.0
    shell_per_message: float = 0.0
    shell_sample: int = 0
    peak_rss_before_mb: float = 0.0
    peak_rss_after_mb: float = 0.0
    opening: float = 0.0
    processing: float = 0.0  # plan + process every window, one process (part of end_to_end)
    processing_cpu: float = 0.0  # CPU seconds of that
    delivered: tuple[int, str] = (0, "")  # what _delivered says after the end-to-end run
    workers: int = 1
    pooled_processing: float = 0.0  # the same with ``workers`` processes
    pooled_cpu: float = 0.0  # CPU seconds the workers spent in process_window, all together
    pooled_messages: int = 0
    pooled_same_ids: bool = False
    pooled_delivery: float = 0.0  # seconds of the delivery after the pooled process stage (in this process)
    peak_rss_workers_mb: float = 0.0  # the largest peak RSS of any child process (the workers), after the pool
    machine: bool = False  # measured as ``niem-exchange run --workers N`` only (no one-core run)
    signing_key: str = "rsa-3072"  # the dev PKI's signing key type (SigningKeyType value)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, items: list, step: Callable[[object], object], note: str = "") -> tuple[Row, list]:
    """Apply ``step`` to every item; the row and the non-None outputs (None: the stage dropped the item)."""
    out = []
    started = time.perf_counter()
    for item in items:
        result = step(item)
        if result is not None:
            out.append(result)
    return Row(name, len(items), time.perf_counter() - started, note), out


def _home(root: Path, name: str, drop: Path, pki) -> tuple[Path, Path]:
    """A fresh exchange home with the config written; (home, config path)."""
    home = root / name
    home.mkdir()
    config = home / "exchange.yaml"
    config.write_text(_CONFIG.format(drop=drop, recipient=RECIPIENT,
                                     certificate=pki.recipient_certificate(RECIPIENT),
                                     signing_key=pki.signing_key, signing_certificate=pki.signing_certificate))
    return home, config


def _end_to_end(config: Path, home: Path) -> tuple[float, float, float, float, int, tuple[int, str]]:
    """plan + process every window + deliver, as ``niem-exchange run`` does.

    Returns (seconds to open the exchange, seconds to run it, of which plan + process, CPU seconds of plan +
    process, messages delivered, the :func:`_delivered` summary).
    The validator is warmed up first (schemas compiled, Saxon started, rules compiled: a one-off ~1-2 s per
    process that a long run pays once), so the rate is the steady state a large batch sees.
    """
    validator.validate(safexml.parse_trusted_file(WARM_UP).getroot())
    started = time.perf_counter()
    ex = open_exchange(config, home)
    opened, cpu = time.perf_counter(), time.process_time()
    try:
        for key in pipeline.plan(ex):
            pipeline.process_window(ex, key)
        processed, cpu = time.perf_counter(), time.process_time() - cpu
        delivered = sum(pipeline.deliver(ex, r.id).delivered for r in ex.config.recipients)
        finished = time.perf_counter()
        ids = _delivered(ex)
    finally:
        ex.close()
    return opened - started, finished - opened, processed - opened, cpu, delivered, ids


# --- the process stage over a pool of processes ------------------------------------------------------------

_worker_exchange: Exchange | None = None


def _worker_start(config: Path, home: Path) -> None:
    """Pool initializer: open this worker's own exchange on the shared home and warm the validator up."""
    global _worker_exchange
    threading.Thread(target=end_with_parent, daemon=True).start()  # never outlive a killed bench
    validator.validate(safexml.parse_trusted_file(WARM_UP).getroot())
    _worker_exchange = open_exchange(config, home)


def _worker_ready(barrier) -> None:
    """Return once every worker has started (each of N calls waits for the other N - 1)."""
    barrier.wait()


def _worker_process(key: str) -> tuple[pipeline.WindowCounts, float]:
    """Process one window in this worker; its counts and the CPU seconds it took."""
    started = time.process_time()
    counts = pipeline.process_window(_worker_exchange, key)
    return counts, time.process_time() - started


class _FinalPasses(pipeline.RunObserver):
    """Notes when ``pipeline.run`` ends processing and starts its delivery passes."""

    def __init__(self) -> None:
        self.at: float | None = None

    def delivering(self, recipient_id: str) -> None:
        self.at = self.at or time.perf_counter()


def _pooled(config: Path, home: Path, workers: int) -> tuple[float, float, float, tuple[int, str]]:
    """``pipeline.run`` with every window processed over ``workers`` processes, as ``run --workers`` does
    (plan and delivery here, including the delivery that overlaps processing).

    Returns (seconds for plan + process, seconds for the delivery passes after it, CPU seconds of the workers
    in process_window, (messages delivered, digest of their ids)).
    """
    ex = open_exchange(config, home)  # the plan and the delivery run here
    context = multiprocessing.get_context("spawn")  # never fork a process that has started Saxon's VM
    cpu: list[float] = []
    try:
        with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context,
                                                              initializer=_worker_start,
                                                              initargs=(config, home)) as pool:
            barrier = manager.Barrier(workers)
            for ready in [pool.submit(_worker_ready, barrier) for _ in range(workers)]:
                ready.result()

            def process(keys: list[str]):
                for counts, seconds in pool.map(_worker_process, keys):
                    cpu.append(seconds)
                    yield counts

            final = _FinalPasses()
            started = time.perf_counter()
            pipeline.run(ex, final, process)
            finished = time.perf_counter()
        return final.at - started, finished - final.at, sum(cpu), _delivered(ex)
    finally:
        ex.close()


def _delivered(ex: Exchange) -> tuple[int, str]:
    """(messages delivered, SHA-256 of their ids in order): two runs that delivered the same ids agree."""
    from sqlalchemy import select

    from exchange.state.db import outbox

    digest, count = hashlib.sha256(), 0
    with ex.engine.connect() as conn:
        query = select(outbox.c.message_id).where(outbox.c.delivered_at.is_not(None)).order_by(outbox.c.message_id)
        for row in conn.execute(query):  # streamed: a million ids are never held at once
            digest.update(row.message_id.encode("ascii"))
            count += 1
    return count, digest.hexdigest()


_CHUNK = 100
"""Records per transaction in the link and outbox-write stages (the pipeline's chunk)."""


def _chunks(items: list) -> list[list]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _stages(ex: Exchange) -> tuple[list[Row], list[etree._Element]]:
    """Run each stage alone over the output of the one before; the rows and the redacted documents."""
    rows: list[Row] = []
    recipient = ex.config.recipients[0]
    builder = BUILDERS[ex.config.message_type]
    now = ex.clock()
    windows = ex.source.plan(None, ex.config.batch_size)

    started = time.perf_counter()
    items = [item for window in windows for item in ex.source.read(window)]
    records = [item for item in items if not isinstance(item, Rejected)]
    rows.append(Row("read", len(items), time.perf_counter() - started,
                    f"{len(windows)} windows, {len(items) - len(records)} rejected"))

    # Linked and enqueued in chunks of _CHUNK, one transaction each, as process_window does.
    started = time.perf_counter()
    linked = []
    for chunk in _chunks(records):
        links = ex.persons.link_many([(ex.source.system, r.ref.record_id, r.person) for r in chunk], now)
        linked += [(r, link.shared_id) for r, link in zip(chunk, links)]
    rows.append(Row("link", len(records), time.perf_counter() - started, f"link_many, {_CHUNK} a transaction"))

    def build(pair):
        record, shared_id = pair
        record_key = f"{ex.source.system}:{record.ref.record_id}"
        mid = message_id(ex.config.name, recipient.id, record_key, record_digest(record))
        header = MessageHeader(mid, now, ex.config.sender, recipient.organization, ex.config.message_type)
        return record, shared_id, mid, record_key, builder.build(record, shared_id, header)

    row, built = _timed("map", linked, build)
    rows.append(row)
    row, _ = _timed("validate (XSD)", built, lambda b: validator.validate(b[4], business_rules=False) or None)
    rows.append(row)
    # A chunk in one call, as the pipeline validates (the business rules of the chunk in one Saxon call).
    started = time.perf_counter()
    invalid = sum(1 for chunk in _chunks(built) for issues in validator.validate_many([b[4] for b in chunk])
                  if issues)
    rows.append(Row("validate (XSD+Schematron)", len(built), time.perf_counter() - started,
                    f"{invalid} invalid; validate_many, {_CHUNK} a call"))

    def redact(b):
        prepared = disclosure.for_recipient(ex, recipient, b[0], b[4], now)
        return None if prepared is None else (*b[:4], prepared)

    row, prepared = _timed("redact", built, redact)
    row.note = f"{len(built) - len(prepared)} withheld by the profile"
    rows.append(row)
    row, signed = _timed("sign", prepared, lambda p: (*p, sign(p[4].root, ex.signer)))
    rows.append(row)
    certificate = ex.recipient_certs[recipient.id].usable(now)
    row, encrypted = _timed("encrypt", signed, lambda s: (*s, encrypt(s[5], certificate)))
    rows.append(row)

    def new_message(e) -> NewMessage:
        record, shared_id, mid, record_key, ready, _, payload = e
        message = QueuedMessage(mid, recipient.id, shared_id, ex.config.message_type, payload,
                                hashlib.sha256(payload).hexdigest(), ready.categories, 0)
        return NewMessage(message, record_key, now)

    started = time.perf_counter()
    for chunk in _chunks(encrypted):
        with ex.engine.begin() as conn:
            ex.outbox.enqueue_many([new_message(e) for e in chunk], conn=conn)
    rows.append(Row("outbox write", len(encrypted), time.perf_counter() - started,
                    f"enqueue_many, {_CHUNK} a transaction"))
    started = time.perf_counter()
    delivered = pipeline.deliver(ex, recipient.id).delivered
    rows.append(Row("deliver (outbox to files)", delivered, time.perf_counter() - started))
    return rows, [p[4].root for p in prepared]


def _floor(documents: list[etree._Element], ex: Exchange) -> float:
    """Seconds per document for raw lxml XSD validation + raw python-xmlsec sign + encrypt, in a tight loop."""
    schema = etree.XMLSchema(etree.parse(str(validator.schema_path(ex.config.message_type))))
    identity = ex.signer
    recipient = ex.recipient_certs[ex.config.recipients[0].id][0]
    _raw_encrypt(_raw_sign(documents[0], identity), recipient)  # first calls allocate
    started = time.perf_counter()
    for document in documents:
        if not schema.validate(document):
            raise AssertionError("a document the pipeline accepted fails the raw schema")
        _raw_encrypt(_raw_sign(document, identity), recipient)
    return (time.perf_counter() - started) / len(documents)


def _encryption_template() -> bytes:
    """The template ``xmlsec1 --encrypt`` fills: the raw floor's, with an X509Data for the certificate."""
    template, recipient_info = encryption_template(etree.Element("holder"))
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(recipient_info))
    return etree.tostring(template, xml_declaration=True, encoding="UTF-8")


def _signature_template(document: etree._Element, method) -> bytes:
    """The document with an enveloped-signature template (exclusive c14n, ``method``, X509 certificate)."""
    document = copy.deepcopy(document)
    template = xmlsec.template.create(document, xmlsec.constants.TransformExclC14N, method.transform, ns="ds")
    document.append(template)
    reference = xmlsec.template.add_reference(template, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template)))
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _shell(documents: list[etree._Element], ex: Exchange, pki, directory: Path) -> float:
    """Seconds per document for xmllint --schema + xmlsec1 --sign + xmlsec1 --encrypt, one process each."""
    directory.mkdir()
    schema = str(validator.schema_path(ex.config.message_type))
    encryption_template = directory / "encrypt-template.xml"
    encryption_template.write_bytes(_encryption_template())
    files = []
    for n, document in enumerate(documents):
        path = directory / f"{n}.xml"
        path.write_bytes(_signature_template(document, ex.signer.method))
        files.append(path)
    signing = f"{pki.signing_key},{pki.signing_certificate}"
    recipient = str(pki.recipient_certificate(RECIPIENT))
    started = time.perf_counter()
    for path in files:
        signed, sealed = path.with_suffix(".signed"), path.with_suffix(".enc")
        for command in (
            ["xmllint", "--noout", "--schema", schema, str(path)],
            ["xmlsec1", "--sign", "--privkey-pem", signing, "--output", str(signed), str(path)],
            ["xmlsec1", "--encrypt", "--pubkey-cert-pem", recipient, "--session-key", "aes-256",
             "--xml-data", str(signed), "--output", str(sealed), str(encryption_template)],
        ):
            subprocess.run(command, check=True, capture_output=True)
    return (time.perf_counter() - started) / len(files)


def _run_end_to_end(result: Result, root: Path, drop: Path, pki, workers: int, machine: bool = False) -> None:
    """Steps 2 and 6 of the module docstring into ``result``: end to end on one core, then the process pool.

    ``machine``: the pool only, timed end to end as ``niem-exchange run --workers N`` runs (plan and process
    over the pool, then delivery here); the one-core run is skipped.
    """
    result.peak_rss_before_mb = _peak_rss_mb()
    if not machine:
        home, config = _home(root, "end-to-end", drop, pki)
        (result.opening, result.end_to_end, result.processing, result.processing_cpu, result.messages,
         result.delivered) = _end_to_end(config, home)
    result.peak_rss_after_mb = _peak_rss_mb()
    if workers > 1:
        home, config = _home(root, f"workers-{workers}", drop, pki)
        result.workers = workers
        result.pooled_processing, result.pooled_delivery, result.pooled_cpu, pooled = _pooled(config, home, workers)
        result.pooled_messages, result.pooled_same_ids = pooled[0], pooled == result.delivered
        result.peak_rss_after_mb = _peak_rss_mb()
        result.peak_rss_workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if machine:
        result.machine = True
        result.messages, result.end_to_end = pooled[0], result.pooled_processing + result.pooled_delivery


def _pki(root: Path, signing_key: str):
    return mint_dev_pki(root / "pki", organization="Bench County", recipients=[RECIPIENT],
                        now=dt.datetime.now(dt.timezone.utc), signing_key_type=signing_key)


def measure(records: int, sample: int, workers: int = 1, signing_key: str = DEFAULT_SIGNING_KEY) -> Result:
    """Generate ``records`` bookings and measure everything once; see the module docstring."""
    result = Result(records, signing_key=signing_key)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp)
        drop = root / "drop"
        drop.mkdir()
        write_demo_drop(drop, SEED, records)
        pki = _pki(root, signing_key)
        _run_end_to_end(result, root, drop, pki, workers)

        home, config = _home(root, "stages", drop, pki)
        ex = open_exchange(config, home)
        try:
            result.rows, documents = _stages(ex)
            result.rows.append(Row("end to end", result.messages, result.end_to_end,
                                   f"plan + process + deliver (opening took {result.opening:.2f} s more)"))
            result.floor = _floor(documents, ex)
            chosen = documents[:: max(1, len(documents) // sample)][:sample]
            result.shell_sample = len(chosen)
            result.shell_per_message = _shell(chosen, ex, pki, root / "shell")
        finally:
            ex.close()
    return result


def measure_drop(drop: Path, records: int, workers: int, machine: bool = False,
                 signing_key: str = DEFAULT_SIGNING_KEY) -> Result:
    """Steps 2 and 6 only, on a drop another process generated (``--scale``: nothing else in this process)."""
    result = Result(records, signing_key=signing_key)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-size-") as tmp:
        root = Path(tmp)
        _run_end_to_end(result, root, drop, _pki(root, signing_key), workers, machine)
    return result


def report(result: Result) -> None:
    """Print the table and the two baseline ratios."""
    print(f"\n{result.records} bookings generated (seed {SEED}), {result.messages} messages delivered end to end, "
          f"one recipient (behavioral-health-provider), {result.signing_key} signing key, one core, wall time")
    print(f"{'stage':<28}{'items':>8}{'items/s':>11}{'us/item':>11}  note")
    for row in result.rows:
        print(f"{row.name:<28}{row.count:>8}{row.rate:>11.0f}{row.seconds / max(row.count, 1) * 1e6:>11.0f}  {row.note}")
    ours = result.messages / result.end_to_end if result.end_to_end else 0.0
    floor = 1 / result.floor if result.floor else 0.0
    shell = 1 / result.shell_per_message if result.shell_per_message else 0.0
    print(f"{'floor (lxml XSD + xmlsec)':<28}{'':>8}{floor:>11.0f}{result.floor * 1e6:>11.0f}  raw calls, same documents")
    print(f"{'shell (xmllint + xmlsec1)':<28}{result.shell_sample:>8}{shell:>11.1f}"
          f"{result.shell_per_message * 1e6:>11.0f}  sample, 3 processes per file")
    print(f"end to end vs floor: {ours / floor if floor else 0:.2f}x of the floor's rate (target >= 0.6x)")
    if result.processing and floor:
        # The issue's stages end at the outbox write; delivery to the recipient's files comes after (and on this
        # VM's journal-less ext4 its file creations cost what the disk makes them cost): both ratios, no choice.
        queued = result.messages / result.processing
        print(f"read -> outbox write (plan + process, delivery not counted): {1e6 / queued:.0f} us/message, "
              f"{queued / floor:.2f}x of the floor's rate")
    print(f"end to end vs shell: {ours / shell if shell else 0:.1f}x faster; the shell script would take "
          f"{result.shell_per_message * result.messages:.0f} s for these {result.messages} messages, "
          f"we took {result.end_to_end:.1f} s (target >= 50x)")
    print(f"peak RSS: {result.peak_rss_before_mb:.0f} MB before the end-to-end run, "
          f"{result.peak_rss_after_mb:.0f} MB after (process high-water mark; the stage runs that follow keep "
          f"every document in memory and are not counted)")
    _report_pool(result)


def _report_pool(result: Result) -> None:
    """The process stage on one core vs over ``workers`` processes, if it was measured."""
    if result.workers < 2:
        return
    if result.machine:
        print(f"  {result.workers} workers: plan + process {result.pooled_processing:.1f} s "
              f"({result.pooled_cpu:.1f} CPU seconds in the workers), delivery {result.pooled_delivery:.1f} s; "
              f"peak RSS {result.peak_rss_after_mb:.0f} MB here, {result.peak_rss_workers_mb:.0f} MB the largest worker")
        return
    one, many = result.processing, result.pooled_processing
    print(f"process stage (plan + every window): one core {one:.1f} s ({result.messages / one:.0f} messages/s), "
          f"{result.workers} workers {many:.1f} s ({result.pooled_messages / many:.0f} messages/s): "
          f"x{one / many:.2f} single vs {result.workers} workers; "
          f"same message ids delivered: {'yes' if result.pooled_same_ids else 'NO'}")
    # CPU busy time tells waiting from working: workers that used about the one-core CPU time but did not
    # finish in 1/N of its wall time waited (for the state database's write lock, or for a busy machine).
    print(f"  CPU seconds in the process stage: one core {result.processing_cpu:.1f}, "
          f"{result.workers} workers {result.pooled_cpu:.1f} together (in process_window only)")


def scale(sizes: list[int], workers: int, machine: bool = False,
          signing_key: str = DEFAULT_SIGNING_KEY) -> list[dict]:
    """Each size in its own processes (generate, then :func:`measure_drop`); print its lines and the ratios.

    ``machine``: each size timed as ``niem-exchange run --workers N`` (see :func:`_run_end_to_end`), peak RSS
    the larger of the parent's and the largest worker's.
    """
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-scale-") as tmp:
            drop = Path(tmp) / "drop"
            subprocess.run([sys.executable, "-m", "exchange.demo.generate", str(drop), "--seed", str(SEED),
                            "--bookings", str(size)], check=True, capture_output=True)
            child = subprocess.Popen([sys.executable, "-m", "bench.pipeline", "--measure-drop", str(drop),
                                      "--records", str(size), "--workers", str(workers),
                                      "--signing-key", signing_key]
                                     + (["--machine"] if machine else []),
                                     stdout=subprocess.PIPE, text=True)
            found = None
            for line in child.stdout:
                if line.startswith(_RESULT):
                    found = json.loads(line[len(_RESULT):])
                else:
                    print(line, end="", flush=True)
            if child.wait() != 0 or found is None:
                raise SystemExit(f"the measuring process for {size} bookings failed")
            results.append(found)
    for found in results:
        found["peak_rss_mb"] = max(found["peak_rss_after_mb"], found["peak_rss_workers_mb"])
    first = results[0]
    per_first = first["end_to_end"] / first["messages"]
    print(f"\nscaling: each size generated and measured in its own processes; ratios against {first['records']} "
          f"bookings (time x1.00 = linear, RSS x1.00 = flat); {signing_key} signing key")
    if machine:
        print(f"the whole machine: plan + process over {workers} workers, then delivery, as `niem-exchange run "
              f"--workers {workers}`; wall time")
    print(f"{'bookings':>10}{'messages':>10}{'us/message':>12}{'x time':>8}{'peak RSS MB':>13}{'x RSS':>7}"
          + (f"{'1 core s':>10}{f'{workers} workers s':>13}{'speed-up':>10}" if workers > 1 and not machine else "")
          + (f"{'wall':>10}" if machine else ""))
    for result in results:
        per = result["end_to_end"] / result["messages"]
        rss = result["peak_rss_mb"]
        line = (f"{result['records']:>10}{result['messages']:>10}{per * 1e6:>12.0f}{per / per_first:>8.2f}"
                f"{rss:>13.0f}{rss / first['peak_rss_mb']:>7.2f}")
        if machine:
            line += f"{result['end_to_end'] / 60:>8.1f} min"
        elif workers > 1:
            line += (f"{result['processing']:>10.1f}{result['pooled_processing']:>13.1f}"
                     f"{result['processing'] / result['pooled_processing']:>9.2f}x"
                     + ("" if result["pooled_same_ids"] else "  (different message ids!)"))
        print(line)
    return results


_RESULT = "RESULT "
"""Prefix of the line a ``--measure-drop`` process prints its numbers on (JSON)."""


def main(argv: list[str] | None = None) -> None:
    """Measure at ``--records`` (or each size of ``--scale``) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="bookings to generate (default 2000)")
    parser.add_argument("--sample", type=int, default=50, help="files for the shell baseline (default 50)")
    parser.add_argument("--scale", default="", help="comma-separated sizes, e.g. 10000,100000,1000000: each "
                                                    "in its own processes, end to end only, with the ratios")
    parser.add_argument("--workers", type=int, default=1, help="also run the process stage over this many "
                                                               "processes and print the ratio (default 1: no)")
    parser.add_argument("--machine", action="store_true", help="with --scale and --workers N: time each size "
                        "as `niem-exchange run --workers N` does (process over N workers, deliver), skip the "
                        "one-core run")
    parser.add_argument("--signing-key", choices=[t.value for t in SigningKeyType], default=DEFAULT_SIGNING_KEY,
                        help="our signing key for every run (default rsa-3072, the dev PKI's default; ec-p256 "
                             "signs with ECDSA-SHA256, also in the floor and the shell script)")
    parser.add_argument("--measure-drop", type=Path, help=argparse.SUPPRESS)  # --scale's measuring process
    args = parser.parse_args(argv)
    if args.measure_drop:
        result = measure_drop(args.measure_drop, args.records, args.workers, args.machine, args.signing_key)
        print(f"{args.records} bookings: {result.messages} messages end to end in {result.end_to_end:.1f} s "
              f"({result.messages / result.end_to_end:.0f}/s), peak RSS {result.peak_rss_after_mb:.0f} MB")
        _report_pool(result)
        fields = ("records", "messages", "end_to_end", "processing", "processing_cpu", "peak_rss_after_mb",
                  "workers", "pooled_processing", "pooled_cpu", "pooled_same_ids", "pooled_delivery",
                  "peak_rss_workers_mb")
        print(_RESULT + json.dumps({name: getattr(result, name) for name in fields}), flush=True)
    elif args.scale:
        if args.machine and args.workers < 2:
            parser.error("--machine needs --workers 2 or more")
        scale([int(s) for s in args.scale.split(",") if s.strip()], args.workers, args.machine, args.signing_key)
    else:
        report(measure(args.records, args.sample, args.workers, args.signing_key))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
