"""Who may use the status port: GnuGk's ``[GkStatus::Auth]``.

``rule=`` combines ``forbid``, ``allow``, ``explicit``, ``regex`` and
``password`` with ``|`` (or) and ``&`` (and), read left to right.  Every rule
but ``password`` is decided by the client's IP when it connects; ``password``
by a login.  :meth:`AuthRules.decide` says whether the IP alone settles it
(the expression comes out the same whether the login would succeed or not)
or a login is needed.

Passwords may be stored as ``PBKDF2:<salt>-<hex>``: PBKDF2-HMAC-SHA512 with
65536 iterations over the UTF-8 password, salted with the salt text's UTF-8
bytes, giving 64 bytes written in hex.  ``python -m gatekeeper.status.passwd
USER`` prints such an entry.  Any other value is taken as the password itself.

With no ``[GkStatus::Auth]`` section at all, only loopback clients are let in
(GnuGk would forbid everyone).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from dataclasses import dataclass, field
from enum import Enum

ITERATIONS = 65536
RULES = ("forbid", "allow", "explicit", "regex", "password", "loopback")


class Verdict(Enum):
    ALLOW = "allow"
    FORBID = "forbid"
    LOGIN = "login"


def hash_password(password: str, salt: str | None = None) -> str:
    """A ``PBKDF2:<salt>-<hex>`` entry for ``password`` (a fresh salt by default)."""
    salt = salt if salt is not None else os.urandom(16).hex()
    if "-" in salt:
        raise ValueError("the salt may not contain '-'")
    derived = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt.encode("utf-8"),
                                  ITERATIONS)
    return f"PBKDF2:{salt}-{derived.hex()}"


def check_password(stored: str, given: str) -> bool:
    """Does ``given`` match a stored entry (hashed or plain)? Constant time."""
    if stored.startswith("PBKDF2:"):
        salt, _, expected = stored[len("PBKDF2:"):].partition("-")
        candidate = hash_password(given, salt)
        return hmac.compare_digest(candidate.encode(), f"PBKDF2:{salt}-{expected.lower()}".encode())
    return hmac.compare_digest(stored.encode("utf-8"), given.encode("utf-8"))


def _parse_rule(text: str) -> list[str]:
    """``explicit|password&regex`` -> ['explicit', '|', 'password', '&', 'regex']."""
    tokens = [t for t in re.split(r"\s*([|&])\s*", text.strip().lower()) if t]
    if not tokens or len(tokens) % 2 == 0:
        raise ValueError(f"bad rule {text!r}")
    for index, token in enumerate(tokens):
        if index % 2 == 0 and token not in RULES:
            raise ValueError(f"unknown rule {token!r} in {text!r}")
        if index % 2 == 1 and token not in "|&":
            raise ValueError(f"bad rule {text!r}")
    return tokens


@dataclass(frozen=True)
class AuthRules:
    """``[GkStatus::Auth]`` parsed."""

    rule: tuple[str, ...] = ("loopback",)
    explicit: dict[str, bool] = field(default_factory=dict)
    default: bool = False
    regex: str | None = None
    users: dict[str, str] = field(default_factory=dict, repr=False)  # secrets: never logged
    shutdown_allowed: bool = True    # GnuGk 5.15 allows it unless Shutdown=forbid
    delay_reject: float = 0.0
    login_timeout: float = 120.0
    tries: int = 3

    @classmethod
    def from_items(cls, items: list[tuple[str, str]]) -> "AuthRules":
        """Build from the section's ``(key, value)`` pairs; ValueError names the bad one."""
        rule: tuple[str, ...] = ("forbid",)   # GnuGk's default once the section exists
        explicit: dict[str, bool] = {}
        users: dict[str, str] = {}
        default = False
        regex = None
        shutdown = True
        delay = 0.0
        timeout = 120.0
        key_filled = False
        for key, value in items:
            lowered = key.lower()
            if lowered == "keyfilled":
                key_filled = True   # GnuGk's encrypted passwords: see below
            elif lowered == "rule":
                try:
                    rule = tuple(_parse_rule(value))
                except ValueError as error:
                    raise ValueError(f"{key}={value}: {error}") from None
            elif lowered == "default":
                default = _allow(key, value)
            elif lowered == "regex":
                try:
                    re.compile(value)
                except re.error as error:
                    raise ValueError(f"{key}={value}: bad regular expression ({error})") from None
                regex = value
            elif lowered == "shutdown":
                shutdown = _allow(key, value)
            elif lowered == "delayreject":
                delay = _seconds(key, value)
            elif lowered == "logintimeout":
                timeout = _seconds(key, value)
            elif _is_ip(key):
                explicit[key] = _allow(key, value)
            else:
                users[key] = value
        if key_filled:
            # The other passwords are GnuGk-encrypted: we cannot read them, and
            # the encrypted text must never work as a password itself.
            users = {user: value for user, value in users.items()
                     if value.startswith("PBKDF2:")}
        return cls(rule, explicit, default, regex, users, shutdown, delay, timeout)

    # -- deciding ------------------------------------------------------------

    def _term(self, term: str, ip: str, login: bool) -> bool:
        if term == "allow":
            return True
        if term == "forbid":
            return False
        if term == "loopback":
            return _is_loopback(ip)
        if term == "explicit":
            return self.explicit.get(ip, self.default)
        if term == "regex":
            if ip in self.explicit:
                return self.explicit[ip]
            return bool(self.regex) and re.search(self.regex, ip) is not None
        return login  # password

    def _evaluate(self, ip: str, login: bool) -> bool:
        result = self._term(self.rule[0], ip, login)
        for index in range(1, len(self.rule), 2):
            operator, term = self.rule[index], self.rule[index + 1]
            value = self._term(term, ip, login)
            result = (result or value) if operator == "|" else (result and value)
        return result

    def decide(self, ip: str) -> Verdict:
        """What the client's IP alone settles."""
        with_login, without = self._evaluate(ip, True), self._evaluate(ip, False)
        if with_login == without:
            return Verdict.ALLOW if with_login else Verdict.FORBID
        return Verdict.LOGIN

    def login(self, user: str, password: str) -> bool:
        stored = self.users.get(user)
        if stored is None:
            check_password(hash_password("x", "0"), password)  # same work either way
            return False
        return check_password(stored, password)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _allow(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("allow", "1", "true", "yes"):
        return True
    if lowered in ("forbid", "0", "false", "no"):
        return False
    raise ValueError(f"{key}={value}: expected allow or forbid")


def _seconds(key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{key}={value}: not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{key}={value}: must not be negative")
    return seconds
