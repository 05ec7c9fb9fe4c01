"""The one root of every error the gatekeeper raises on purpose."""

from __future__ import annotations


class GatekeeperError(Exception):
    """Root of all gatekeeper errors."""


class DecodeError(GatekeeperError):
    """Bytes from a peer could not be decoded.

    ``kind`` names the message kind when it was known before the failure
    (e.g. ``"registrationRequest"``), else ``None``; ``reason`` is short.
    """

    def __init__(self, reason: str, kind: str | None = None) -> None:
        self.reason = reason
        self.kind = kind
        text = f"{kind}: {reason}" if kind else reason
        super().__init__(text)


class EncodeError(GatekeeperError):
    """A message could not be encoded (bad value, out of range, missing field)."""

    def __init__(self, reason: str, kind: str | None = None) -> None:
        self.reason = reason
        self.kind = kind
        text = f"{kind}: {reason}" if kind else reason
        super().__init__(text)
