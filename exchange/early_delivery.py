"""Delivering while worker processes are still building messages (``niem-exchange run --workers N``).

With a pool, the calling process only waits for window counts; meanwhile it can send what the finished
windows have queued. :class:`EarlyDelivery` runs delivery passes in a thread of the calling process until
processing ends, so the passes after processing have only the last windows' messages left.

What it leaves to those normal passes, so that a run behaves as it did without it:

- retries: it sends only messages never attempted (``untried_only``); a message that failed waits for its
  backoff and the normal passes, so a recipient that is down gets one attempt per message and run;
- a recipient with any failure in an early pass is not tried early again in this run;
- a pass stopped by an error (a changed SSH host key, a transport that cannot be built) gives its claims back
  uncounted and leaves that recipient to the normal pass, which meets the error again and reports it as a
  run without early delivery would.

Passes never overlap: one thread runs them one after another, and the normal passes start after it has
ended. The outbox's claims make every message go out once whichever pass takes it.
"""
from __future__ import annotations

import logging
import threading

from exchange.pipeline import DeliveryCounts, deliver
from exchange.runtime import Exchange

IDLE_WAIT = 0.5
"""Most seconds between rounds of passes that found nothing to send; a finished window
(:meth:`EarlyDelivery.window_done`) starts the next round at once."""

_log = logging.getLogger(__name__)


class EarlyDelivery:
    """A thread delivering queued messages of every push recipient until :meth:`finish`."""

    def __init__(self, ex: Exchange) -> None:
        self._ex = ex
        self._stop = threading.Event()
        self._queued = threading.Event()  # a window finished since the last round began: its messages wait
        self._thread = threading.Thread(target=self._loop, name="early-delivery", daemon=True)
        self._counts = DeliveryCounts()

    def start(self) -> None:
        """Begin delivering in the background."""
        self._thread.start()

    def window_done(self) -> None:
        """A window finished, its messages queued: an idle round starts now instead of after IDLE_WAIT (with
        fast windows the whole run could otherwise end before the first early pass found anything)."""
        self._queued.set()

    def finish(self) -> DeliveryCounts:
        """Stop after the pass under way; what the early passes delivered, failed and dead-lettered."""
        self._stop.set()
        self._queued.set()  # an idle wait ends now
        if self._thread.ident is not None:
            self._thread.join()
        return self._counts

    def _loop(self) -> None:
        recipients = [r.id for r in self._ex.config.recipients if r.transport.kind != "pull"]
        while recipients and not self._stop.is_set():
            sent = 0
            for recipient in list(recipients):
                if self._stop.is_set():
                    break
                try:
                    counts = deliver(self._ex, recipient, untried_only=True)
                except Exception as error:  # the normal pass meets it again and reports it
                    _log.warning("early delivery to %s stopped (%s); left to the pass after processing",
                                 recipient, type(error).__name__)
                    recipients.remove(recipient)
                    continue
                self._counts = DeliveryCounts(self._counts.delivered + counts.delivered,
                                              self._counts.failed + counts.failed, self._counts.dead + counts.dead)
                sent += counts.delivered
                if counts.failed or counts.dead:
                    recipients.remove(recipient)  # left to the normal passes, with their backoff
            if not sent:
                self._queued.wait(IDLE_WAIT)
            self._queued.clear()  # set after this: the round below sees that window's messages anyway
