"""Log lines a peer can trigger, at a bounded rate.

Anything a peer sends may be sent a million times: a line logged for each
would let any host fill the disk and spend the CPU on formatting.  Every log
line that a datagram, a TCP line or a call signalling message can cause goes
through a :class:`RateLimitedLog` (the RAS socket, the RAS controller, the
status port, the call signalling relay).
"""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

#: (kind, exception type, file and line it was raised at)
_Signature = tuple[str, type, tuple[str, int] | None]


def _origin(tb: TracebackType | None) -> tuple[str, int] | None:
    """Where an exception was raised: the innermost frame of its traceback."""
    try:
        while tb.tb_next is not None:
            tb = tb.tb_next
        return (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    except AttributeError:  # None, or a cleaned Failure's stand-in without frames
        return None


class RateLimitedLog:
    """Logs the first of a kind of trouble, then at most one line per
    ``interval`` seconds for that kind, saying how many were not logged.

    ``kind`` is a constant of the caller's (``"malformed"``, ``"send"``, ...),
    never text from the wire, so the tables here stay small.  ``kind``, ``text``
    and ``failure`` are positional, so ``kind`` and ``text`` are free for log
    fields (``format``, ``failure`` and ``level`` are Twisted's own).

    * ``log(kind, text, **fields)`` logs a warning;
    * ``log.failure(kind, text, **fields)``, called in an ``except`` block (or
      given a :class:`Failure`), logs an unexpected exception: with its
      traceback the first time that exception (its type and the line it was
      raised at) is seen for that kind, afterwards as a one-line summary at
      level error, rate-limited like the warnings.  At most ``tracebacks``
      different tracebacks are ever logged.

    ``seen`` counts every occurrence of each kind, logged or not.
    """

    def __init__(self, log: Logger, clock: IReactorTime, interval: float = 10.0,
                 tracebacks: int = 32) -> None:
        self.log = log
        self.clock = clock
        self.interval = interval
        self.tracebacks = tracebacks
        self.seen: Counter[str] = Counter()
        self._next: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._shown: set[_Signature] = set()

    def _due(self, kind: str, now: float) -> int | None:
        """How many of ``kind`` were held back, when one may be logged now."""
        if now < self._next.get(kind, 0.0):
            self._suppressed[kind] += 1
            return None
        self._next[kind] = now + self.interval
        return self._suppressed.pop(kind, 0)

    def __call__(self, kind: str, text: str, /, **fields: object) -> None:
        self.seen[kind] += 1
        skipped = self._due(kind, self.clock.seconds())
        if skipped is None:
            return
        self.log.warn(text + _held_back(skipped), skipped=skipped, **fields)

    def failure(self, kind: str, text: str, failure: Failure | None = None, /,
                **fields: object) -> None:
        self.seen[kind] += 1
        if failure is None:
            error_type, error, tb = sys.exc_info()
            if error_type is None:
                error_type, error, tb = RuntimeError, RuntimeError("no exception"), None
        else:
            error_type, error, tb = failure.type, failure.value, failure.getTracebackObject()
        signature = (kind, error_type, _origin(tb))
        new = signature not in self._shown and len(self._shown) < self.tracebacks
        now = self.clock.seconds()
        if new:
            self._shown.add(signature)
            self._next[kind] = now + self.interval
            skipped = self._suppressed.pop(kind, 0)
        else:
            skipped = self._due(kind, now)
            if skipped is None:
                return
        if new:
            if failure is None:
                failure = Failure(error, error_type, tb)
            self.log.failure(text + _held_back(skipped), failure, skipped=skipped, **fields)
        else:
            more = "; {skipped} more like it not logged" if skipped else ""
            self.log.error(text + ": {exception} (traceback logged before" + more + ")",
                           exception=f"{error_type.__name__}: {error}"[:300],
                           skipped=skipped, **fields)


def _held_back(skipped: int) -> str:
    """The end of a line that was held back ``skipped`` times (nothing for none)."""
    return " ({skipped} more like it not logged)" if skipped else ""
