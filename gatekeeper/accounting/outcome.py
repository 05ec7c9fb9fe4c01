"""Whether an accounting event counts as logged, from the modules' results
and their ``[Gatekeeper::Acct]`` control flags, by GnuGk's rules.

Each module that gets an event answers ``OK`` (logged), ``FAIL`` (not
logged) or ``NEXT`` (nothing to log: its template or URL for the event is
empty).  GnuGk walks the modules in order:

- a ``required`` or ``sufficient`` module that does not answer OK makes the
  event fail;
- an ``optional`` or ``alternative`` module's failure does not, except that
  the result of the last module that answered decides when it was not OK;
- GnuGk stops at the first ``sufficient`` or ``alternative`` module that
  answers OK.

We compute the same verdict, but every module listed for the event still
gets it (there is no stopping early: see doc/configuration.md), and a failed
verdict is only logged and counted: accounting here runs after the RAS or
Q.931 answer has gone out, so it cannot reject or end a call.
"""

from __future__ import annotations

from typing import Iterable

OK = "ok"
FAIL = "fail"
NEXT = "next"

_DECIDING = ("required", "sufficient")
_TERMINAL = ("sufficient", "alternative")


def verdict(results: Iterable[tuple[str, str]]) -> bool:
    """True if an event counts as logged; ``results`` are (control, result)
    pairs of the modules that got the event, in ``[Gatekeeper::Acct]`` order."""
    logged = True
    last = OK
    for control, result in results:
        last = result
        if result != OK and control in _DECIDING:
            logged = False
        if result == OK and control in _TERMINAL:
            break           # GnuGk asks no further module for its verdict
    return logged and last == OK
