"""The pipeline: plan windows, process each (link, map, validate, sign, encrypt, enqueue), deliver.

Three plain calls that the CLI runs in sequence and the Airflow DAG runs as tasks: :func:`plan` returns
window keys, :func:`process_window` turns one window into queued messages, :func:`deliver` sends one
recipient's queue. Only keys and counts cross between them, never records.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from exchange import disclosure
from exchange.runtime import Exchange
from exchange.security import encrypt, sign_to_serialize
from exchange.state import ledger
from exchange.state.db import begin_unsynced, commit_unsynced, sync_log
from exchange.state.outbox import NewMessage, QueuedMessage, message_id
from exchange.state.reissue import identities_of, supersede_moved
from exchange.state.windows import WindowCounts
from niem_iepd import validator
from transforms.mapping import BUILDERS, MessageHeader
from transforms.model import (
    MessageInvalidError,
    PermanentError,
    RecordError,
    Receipt,
    Rejected,
    RetryableError,
    record_digest,
)

@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """What one delivery pass did for one recipient."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(slots=True)
class RunSummary:
    """Counts for a whole run, as the CLI prints them."""

    windows: int = 0
    read: int = 0
    quarantined: int = 0
    already_sent: int = 0
    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    outbox: dict[str, int] = field(default_factory=dict)


def plan(ex: Exchange) -> list[str]:
    """Ask the source for windows past the cursor, remember them, and return every pending window key."""
    ex.windows.add(ex.source.plan(ex.windows.cursor(), ex.config.batch_size))
    return ex.windows.pending()


_RECORD_CHUNK = 100
"""Records linked in one transaction and whose messages are enqueued in one (a window is split into chunks)."""


def process_window(ex: Exchange, key: str) -> WindowCounts:
    """Read one window and queue a message per record and recipient; quarantine what cannot be used.

    The window goes through in chunks of records: each chunk is linked in one transaction and its messages
    enqueued in one. The last chunk's messages and the window's completion commit together, so a crash can
    never leave a window done with messages missing (and a window re-read after a crash finds the messages
    already queued by their idempotent ids and builds only the rest).
    """
    window = ex.windows.get(key)
    tally = _Tally()
    taken: set[str] = set()  # message ids this window queued: a record read twice is queued once
    chunks = _chunked(ex.source.read(window), _RECORD_CHUNK)
    current = next(chunks, [])
    while True:
        following = next(chunks, None)  # read ahead: the last chunk commits with the window's completion
        entries = _queue_chunk(ex, current, key, tally, taken)
        if following is None:
            break
        with begin_unsynced(ex.engine) as conn:  # nothing leaves before a delivery syncs the log
            tally.enqueued += ex.outbox.enqueue_many(entries, conn=conn)
            supersede_moved(conn, ex.config.name, key, ex.source.system, entries, ex.clock())
        current = following
    with begin_unsynced(ex.engine) as conn:
        tally.enqueued += ex.outbox.enqueue_many(entries, conn=conn)
        # a merge or split between linking and here: those messages wait for the window's second reading
        supersede_moved(conn, ex.config.name, key, ex.source.system, entries, ex.clock())
        counts = WindowCounts(tally.records, tally.quarantined, tally.enqueued, tally.already_sent)
        ex.windows.complete(key, counts, ex.clock(), conn=conn)
    return counts


@dataclass(slots=True)
class _Tally:
    """Running counts of one window."""

    records: int = 0
    quarantined: int = 0
    enqueued: int = 0
    already_sent: int = 0


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of at most ``size`` items (streaming: one chunk in memory at a time)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(slots=True)
class _Plan:
    """A record that some recipient still needs, with its message ids per recipient id."""

    record: object
    record_key: str
    shared: str | None  # the record's shared id when its ids were computed (None: not linked yet)
    ids: dict[str, str]
    todo: list


def _queue_chunk(ex: Exchange, items: list, window_key: str, tally: _Tally, taken: set[str]) -> list[NewMessage]:
    """Link a chunk of records in one transaction and build their messages; quarantine what cannot be used.

    Every message of the chunk is built and redacted first, then all are validated together (one Saxon call
    for the business rules), then each record's messages are signed and encrypted; a record whose message
    fails is quarantined with the same reason as when each message was validated in turn, and the rest go on.
    Returns the messages to enqueue (not yet stored). Records every recipient already has are counted as
    already sent and not linked again, as before.
    """
    builder = BUILDERS[ex.config.message_type]
    system = ex.source.system
    records = []
    for item in items:
        tally.records += 1
        if isinstance(item, Rejected):
            ex.quarantine.put(item.error, ex.clock())
            tally.quarantined += 1
        elif not isinstance(item, builder.record_type):
            ex.quarantine.put(RecordError(str(item.ref), "(record)", f"a {type(item).__name__} cannot become a "
                                          f"{builder.message_type}"), ex.clock())
            tally.quarantined += 1
        else:
            records.append(item)
    identities = identities_of(ex.engine, system, [r.ref.record_id for r in records])
    plans = [_plan(ex, record, identities[record.ref.record_id]) for record in records]
    known = ex.outbox.known([mid for plan in plans for mid in plan.ids.values()])
    wanted = []
    for plan in plans:
        plan.todo = [r for r in ex.config.recipients if plan.ids[r.id] not in known and plan.ids[r.id] not in taken]
        if not plan.todo:
            tally.already_sent += 1
            continue
        taken.update(plan.ids[r.id] for r in plan.todo)
        wanted.append(plan)
    # Linked in a transaction of our own whose commit runs in a thread: the disk's sync of it (2-6 ms a chunk)
    # overlaps building, validating and sealing the chunk. It is waited for before anything that could depend
    # on it touches the state database (reads of the links, quarantine entries, the chunk's messages).
    conn = ex.engine.connect()
    try:
        commit_unsynced(conn)  # a delivery syncs the log before any message leaves
        conn.begin()  # as engine.begin() does: the commit then covers what the index wrote through the driver
        links = ex.persons.link_many([(system, p.record.ref.record_id, p.record.person) for p in wanted],
                                     ex.clock(), conn=conn)
    except BaseException:
        conn.close()  # rolls the links back
        raise
    linked = _Commit(conn)
    try:
        return _seal_chunk(ex, wanted, links, linked, window_key, tally, taken)
    finally:
        linked.join()  # an error already on its way out wins over the commit's own


def _seal_chunk(ex: Exchange, wanted: list[_Plan], links: list, linked: _Commit, window_key: str, tally: _Tally,
                taken: set[str]) -> list[NewMessage]:
    """:func:`_queue_chunk` once the chunk is linked (``linked``: the links' commit, still running)."""
    system = ex.source.system
    if any(disclosure.reads_state(ex, r, plan.record) for plan in wanted for r in plan.todo):
        linked.wait()  # redaction reads consents by the record's shared id
    built: list[_Built] = []
    for plan, link in zip(wanted, links):
        if plan.shared is not None and link.shared_id != plan.shared:
            # Moved by a merge or split meanwhile: the ids must name the new identity (rare; one record).
            linked.wait()
            plan = _plan(ex, plan.record, identities_of(ex.engine, system, [plan.record.ref.record_id])
                         [plan.record.ref.record_id])
            done = ex.outbox.known(list(plan.ids.values()))
            plan.todo = [r for r in ex.config.recipients if plan.ids[r.id] not in done | taken]
            if not plan.todo:
                tally.already_sent += 1
                continue
            taken.update(plan.ids[r.id] for r in plan.todo)
            link = ex.persons.link(system, plan.record.ref.record_id, plan.record.person, ex.clock())
        built.append(_build_messages(ex, plan, link))
    # Schema and business rules once, on the copies that leave; every message of the chunk in one Saxon call,
    # each still checked as its own document. Between stages Saxon runs with cold caches: one call a message
    # cost ~300 us of validation CPU a message in the pipeline against ~130 us for a chunk in one call.
    issues = iter(validator.validate_many([prepared.root for one in built for _, _, prepared in one.ready]))
    entries: list[NewMessage] = []
    for one in built:
        found = [next(issues) for _ in one.ready]  # every record takes its own lists, whatever happens to it
        try:
            _check(one, found, BUILDERS[ex.config.message_type])
            entries += _seal(ex, one, window_key)
        except RecordError as error:
            linked.wait()
            ex.quarantine.put(error, ex.clock())
            tally.quarantined += 1
            taken.difference_update(one.plan.ids[r.id] for r in one.plan.todo)  # a second copy is tried again
    linked.wait()  # the links are durable before their messages can be queued
    return entries


class _Commit:
    """Commit a connection's transaction in a thread, then close the connection.

    :meth:`wait` returns once the transaction is committed, or raises why it was not (the connection's close
    then rolled it back); :meth:`join` only waits for the thread (for a caller already failing).
    """

    __slots__ = ("_conn", "_error", "_thread")

    def __init__(self, conn) -> None:
        self._conn = conn
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="commit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._conn.commit()
        except BaseException as error:  # handed to the waiting caller
            self._error = error
        finally:
            try:
                self._conn.close()
            except BaseException as error:
                self._error = self._error or error

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error  # at every wait: a failed commit never reads as done

    def join(self) -> None:
        self._thread.join()


def _plan(ex: Exchange, record, identity: tuple[str, str | None]) -> _Plan:
    """The record's message ids per recipient under its identity (see :mod:`exchange.state.reissue`)."""
    record_key = f"{ex.source.system}:{record.ref.record_id}"
    digest = record_digest(record)
    ids = {r.id: message_id(ex.config.name, r.id, record_key, digest, identity[0]) for r in ex.config.recipients}
    return _Plan(record, record_key, identity[1], ids, [])


@dataclass(slots=True)
class _Built:
    """A record's messages built and redacted for the recipients still to get it, not yet validated.

    ``ready`` holds (recipient, message header, redacted message) in recipient order, up to the first recipient
    whose message could not be built or redacted; ``error`` is that failure (raised once the messages before
    it are known to be valid, so a record is quarantined for the same reason as when each was checked in turn).
    """

    plan: _Plan
    link: object
    now: datetime
    ready: list = field(default_factory=list)
    error: RecordError | None = None


def _build_messages(ex: Exchange, plan: _Plan, link) -> _Built:
    """Build and redact the record's messages for the recipients still to get it (see :class:`_Built`).

    Message ids cover the record's shared id once a merge or split has moved it (see
    :mod:`exchange.state.reissue`): re-reading a window then re-issues exactly the moved records' messages.
    """
    builder = BUILDERS[ex.config.message_type]
    record, ids = plan.record, plan.ids
    item = _Built(plan, link, ex.clock())
    try:
        for recipient in plan.todo:
            header = MessageHeader(ids[recipient.id], item.now, ex.config.sender, recipient.organization,
                                   ex.config.message_type)
            root = builder.build(record, link.shared_id, header)
            # Redacted per profile in place, not as a copy: the built message is made again from the same
            # header only if what redaction left is invalid (_check), which is rare.
            prepared = disclosure.for_recipient(ex, recipient, record, root, item.now, in_place=True)
            if prepared is None:  # default-deny: this recipient may not receive this record
                continue
            item.ready.append((recipient, header, prepared))
    except RecordError as error:
        item.error = error
    return item


def _check(item: _Built, found: list[list[validator.SchemaIssue]], builder) -> None:
    """Raise the record's first failure: an invalid message (``found``: the issues of each redacted message in
    ``item.ready``), else the failure that stopped building. Every recipient's message is valid before any is
    queued."""
    for (_, header, prepared), issues in zip(item.ready, found):
        if issues:
            # Only when the message that leaves fails is the built message checked too, to say which step is at
            # fault: it is built again (redaction worked on the first one), the same from the same header.
            built = validator.validate(builder.build(item.plan.record, item.link.shared_id, header),
                                       business_rules=False)
            if built:
                raise MessageInvalidError(str(item.plan.record.ref), built[0].path,
                                          f"built message is invalid: {built[0].message}")
            first = issues[0]
            raise MessageInvalidError(str(item.plan.record.ref), first.path, f"message redacted for profile "
                                      f"{prepared.profile} is invalid: {first.message}")
    if item.error is not None:
        raise item.error


def _seal(ex: Exchange, item: _Built, window_key: str | None) -> list[NewMessage]:
    """Sign and encrypt the record's checked messages, one queue entry per recipient."""
    entries = []
    for recipient, _, prepared in item.ready:
        # The redacted copy is this record's own and is only serialized next: signed in place (two copies less).
        signed = sign_to_serialize(prepared.root, ex.signer)
        # one EncryptedKey per certificate of this recipient valid now; none valid refuses (never an expired one)
        payload = encrypt(signed, ex.recipient_certs[recipient.id].usable(item.now))
        message = QueuedMessage(item.plan.ids[recipient.id], recipient.id, item.link.shared_id,
                                ex.config.message_type, payload, hashlib.sha256(payload).hexdigest(),
                                prepared.categories, 0)
        entries.append(NewMessage(message, item.plan.record_key, item.now, window_key))
    return entries


_CLAIM_CHUNK = 100
"""Messages claimed per transaction in a delivery pass (a killed pass leaves at most this many leased)."""


def deliver(ex: Exchange, recipient_id: str, *, untried_only: bool = False) -> DeliveryCounts:
    """Send one recipient's due messages; record each delivery in the ledger in the same transaction.

    ``untried_only``: only messages never attempted (see :mod:`exchange.early_delivery`); retries wait for
    a normal pass, so a recipient that is down gets one attempt per message and run, as without it.

    Messages are claimed, sent and settled in chunks: after a chunk is sent the transport is flushed (if it
    batches durability) and every receipt of the chunk is recorded with its ledger entry in one commit.

    Each message is claimed first (``sending``, with a lease), so two passes never send the same one at once
    and a pass killed mid-send leaves it for the next pass (the transport is idempotent per message id).
    A ``RetryableError`` schedules the next attempt with backoff, a ``PermanentError`` or the last allowed
    attempt dead-letters it. A ``SecurityError`` (e.g. a changed SSH host key) or anything unexpected stops
    the pass: the claimed messages not yet settled go back to the queue uncounted and the error propagates.
    """
    recipient = next(r for r in ex.config.recipients if r.id == recipient_id)
    if recipient.transport.kind == "pull":  # it fetches its own (exchange.pickup): its messages stay queued
        return DeliveryCounts()
    delivered = failed = dead = 0
    due = ex.outbox.due(recipient_id, ex.clock(), untried_only=untried_only)
    if not due:
        return DeliveryCounts()
    transport = ex.transport(recipient_id)
    chunks = [due[start:start + _CLAIM_CHUNK] for start in range(0, len(due), _CLAIM_CHUNK)]
    try:
        # Claimed in small chunks (one transaction each: a commit is the dominant wait per chunk), each after the
        # first in the commit that settles the one before it; each id is tried at most once per pass, however
        # short its backoff. Ids another pass took are skipped.
        claimed: list[QueuedMessage] | None = None
        for index, chunk in enumerate(chunks):
            if claimed is None:  # not taken by the settling of the chunk before (the first, or none committed)
                with begin_unsynced(ex.engine) as conn:
                    claimed = ex.outbox.claim_many(chunk, ex.clock(), conn=conn)
            # The claims, the messages' queueing and links, and the chunk before's receipts are on disk before
            # anything of this chunk leaves: every commit so far, synced at once, outside the write lock.
            sync_log(ex.engine)
            sent: list[tuple[QueuedMessage, Receipt]] = []
            stop: tuple[BaseException, list[QueuedMessage]] | None = None
            for position, message in enumerate(claimed):
                try:
                    receipt = transport.deliver(message.message_id, message.payload, message.sha256)
                except (RetryableError, PermanentError) as error:
                    gave_up = _fail(ex, message, error)
                    dead += gave_up
                    failed += not gave_up
                    continue
                except BaseException as error:
                    stop = (error, claimed[position:])
                    break
                sent.append((message, receipt))
            following = chunks[index + 1] if stop is None and index + 1 < len(chunks) else []
            try:  # what went out before a stop is settled as well: it is at the receiver
                settled, claimed = _settle(ex, recipient, transport, sent, following)
            except BaseException as error:  # its commit, with the next chunk's claims, did not happen
                _release(ex, [m for m, _ in sent] + (stop[1] if stop else []), error)
                raise
            delivered += settled.delivered
            failed += settled.failed
            dead += settled.dead
            if stop is not None:
                _release(ex, stop[1], stop[0])
                raise stop[0]
    finally:
        sync_log(ex.engine)  # the pass's last receipts, with their ledger entries, are on disk when it returns
        close = getattr(transport, "close", None)  # transports that hold a connection reuse it for the pass
        if close is not None:
            close()
    return DeliveryCounts(delivered, failed, dead)


def _fail(ex: Exchange, message: QueuedMessage, error: RetryableError | PermanentError) -> bool:
    """Count a failed attempt (backoff, or dead-letter when permanent or out of attempts); True if dead."""
    give_up = isinstance(error, PermanentError) or message.attempts + 1 >= ex.config.max_attempts
    ex.outbox.mark_failed(message.message_id, str(error), dead=give_up, now=ex.clock())
    return give_up


def _release(ex: Exchange, messages: list[QueuedMessage], error: BaseException) -> None:
    """Give claimed messages back uncounted: the pass stopped before they were tried or settled."""
    for message in messages:
        ex.outbox.release(message.message_id, f"delivery stopped: {type(error).__name__}", ex.clock())


def _settle(ex: Exchange, recipient, transport, sent: list[tuple[QueuedMessage, Receipt]],
            following: list[str]) -> tuple[DeliveryCounts, list[QueuedMessage] | None]:
    """Record a chunk's receipts: flush the transport, then every receipt and its ledger entry in one commit.

    A transport with a ``flush()`` (the local outbox) makes what it delivered durable there, once per chunk
    instead of once per message; only after it returns is any message of the chunk marked delivered. If it
    fails, each message counts a failed attempt and goes out again later (the transport is idempotent per
    message id, so the receiver still gets one copy). A crash before the commit leaves the chunk claimed:
    the next pass after the lease delivers it again the same way.

    The ids of ``following`` (the pass's next chunk) are claimed in the same commit, which saves the pass a
    commit per chunk; returns the counts and those claimed messages, or None when nothing was committed here
    (the caller claims them itself).
    """
    if not sent:
        return DeliveryCounts(), None
    flush = getattr(transport, "flush", None)
    if flush is not None:
        try:
            flush()
        except (RetryableError, PermanentError) as error:
            dead = sum(_fail(ex, message, error) for message, _ in sent)
            return DeliveryCounts(0, len(sent) - dead, dead), None
    terms: dict[str, dict[str, str]] = {}
    entries = []
    for message, receipt in sent:
        if message.message_type not in terms:
            terms[message.message_type] = disclosure.ledger_terms(ex, recipient, message.message_type)
        entries.append(ledger.Disclosure(
            at=receipt.delivered_at, exchange=ex.config.name, recipient=recipient.id,
            recipient_name=recipient.organization, shared_id=message.shared_id,
            message_id=message.message_id, message_type=message.message_type,
            message_sha256=message.sha256, categories=message.categories, **terms[message.message_type],
        ))
    with begin_unsynced(ex.engine) as conn:  # on disk before the next chunk leaves and when the pass ends
        ex.outbox.mark_delivered_many(conn, [receipt for _, receipt in sent])
        ledger.append_many(conn, entries)
        claimed = ex.outbox.claim_many(following, ex.clock(), conn=conn)
    return DeliveryCounts(len(sent)), claimed


class RunObserver:
    """Hooks a front end (the CLI's progress bar) can override; the default does nothing."""

    def planned(self, windows: int) -> None:
        """Called once with the number of windows about to be processed."""

    def window_done(self, counts: WindowCounts) -> None:
        """Called after each window."""

    def delivering(self, recipient_id: str) -> None:
        """Called before delivering to each recipient."""


def run(ex: Exchange, observer: RunObserver | None = None,
        process: Callable[[list[str]], Iterable[WindowCounts]] | None = None) -> RunSummary:
    """The whole exchange once: plan, process every pending window, deliver to every recipient.

    ``process`` processes a list of window keys and yields their counts in order (e.g. over a pool of
    processes, :func:`exchange.workers.process_windows`); by default each window is processed here in turn.
    With ``process``, this process is idle meanwhile, so it delivers what the windows have queued so far
    (:mod:`exchange.early_delivery`); the passes after processing deliver the rest and every retry.
    """
    from exchange.early_delivery import EarlyDelivery

    observer = observer or RunObserver()
    summary = RunSummary()
    keys = plan(ex)
    summary.windows = len(keys)
    observer.planned(len(keys))
    early = EarlyDelivery(ex) if process is not None else None
    processed = process(keys) if process is not None else (process_window(ex, key) for key in keys)
    try:
        if early is not None:
            early.start()
        for counts in processed:
            summary.read += counts.records
            summary.quarantined += counts.quarantined
            summary.enqueued += counts.enqueued
            summary.already_sent += counts.already_sent
            observer.window_done(counts)
            if early is not None:
                early.window_done()
    finally:
        sent = early.finish() if early is not None else DeliveryCounts()
    summary.delivered += sent.delivered
    summary.failed += sent.failed
    summary.dead += sent.dead
    for recipient in ex.config.recipients:
        observer.delivering(recipient.id)
        counts = deliver(ex, recipient.id)
        summary.delivered += counts.delivered
        summary.failed += counts.failed
        summary.dead += counts.dead
    summary.outbox = ex.outbox.counts()
    sync_log(ex.engine)  # what the windows linked and queued is on disk when the run returns, even unsent
    return summary
