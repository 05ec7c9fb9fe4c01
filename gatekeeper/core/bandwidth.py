"""Bandwidth accounting against ``[Gatekeeper::Main] TotalBandwidth``.

Amounts are in H.225.0 units of 100 bit/s, as in the ARQ/BRQ ``bandWidth``.
"""

from __future__ import annotations


class BandwidthPool:
    """The bandwidth the gatekeeper may hand out; ``total=None`` is unlimited."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.used = 0

    def reconfigure(self, total: int | None) -> None:
        """A new limit (a reload); what calls hold now stays theirs, even
        above the new limit (new requests wait until enough is given back)."""
        self.total = total

    @property
    def available(self) -> int | None:
        if self.total is None:
            return None
        return max(0, self.total - self.used)

    def can_take(self, amount: int) -> bool:
        return self.total is None or self.used + amount <= self.total

    def take(self, amount: int) -> bool:
        """Reserve ``amount``; False (and nothing reserved) if it is not there."""
        if not self.can_take(amount):
            return False
        self.used += amount
        return True

    def give_back(self, amount: int) -> None:
        self.used = max(0, self.used - amount)

    def change(self, current: int, wanted: int) -> int:
        """Move a reservation from ``current`` to ``wanted``; returns what was
        granted (``wanted`` if it fits, else ``current`` unchanged)."""
        if wanted <= current or self.can_take(wanted - current):
            self.used += wanted - current
            self.used = max(0, self.used)
            return wanted
        return current
