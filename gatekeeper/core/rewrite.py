"""``[RasSrv::RewriteE164]``: dialled numbers rewritten before routing.

Each key is a prefix, each value what replaces it: ``0049=49``. In a key, ``.`` matches any one digit; in the
value, each ``.`` takes the digit the matching ``.`` of the key matched, in
order (``0..=1..`` turns 0712 into 1712). The longest matching key wins and a
number is rewritten once. Only dialled-digit aliases change; the rewritten
destination is what routing, the call record and the CDR see.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatekeeper.configfile import ConfigError, IniFile
from gatekeeper.h225.ras import Alias

SECTION = "RasSrv::RewriteE164"
_KEY_CHARS = set("0123456789*#+.")


@dataclass(frozen=True, slots=True)
class RewriteRule:
    pattern: str
    replacement: str

    def match(self, digits: str) -> str | None:
        """The rewritten number, or None when the pattern does not match."""
        if len(digits) < len(self.pattern):
            return None
        wildcards = []
        for want, have in zip(self.pattern, digits):
            if want == ".":
                if not have.isdigit():
                    return None
                wildcards.append(have)
            elif want != have:
                return None
        filled = iter(wildcards)
        head = "".join(next(filled, "") if c == "." else c for c in self.replacement)
        return head + digits[len(self.pattern):]


def parse_rewrite(ini: IniFile) -> tuple[RewriteRule, ...]:
    """The rules, longest pattern first; a bad pattern names key and value."""
    rules = []
    for key, value in ini.items(SECTION):
        if not key or not set(key) <= _KEY_CHARS:
            raise ConfigError(ini.path, SECTION, key, value,
                              "the prefix may hold only digits, *, #, + and . (any digit)")
        if not set(value) <= _KEY_CHARS:
            raise ConfigError(ini.path, SECTION, key, value,
                              "the replacement may hold only digits, *, #, + and .")
        if value.count(".") > key.count("."):
            raise ConfigError(ini.path, SECTION, key, value,
                              "the replacement has more . than the prefix")
        rules.append(RewriteRule(key, value))
    rules.sort(key=lambda rule: len(rule.pattern), reverse=True)
    return tuple(rules)


def rewrite_destination(rules: tuple[RewriteRule, ...],
                        aliases: tuple[Alias, ...]) -> tuple[Alias, ...]:
    """``aliases`` with their dialled digits rewritten by the first rule that
    matches each (the same tuple when nothing changes)."""
    if not rules:
        return aliases
    changed = False
    result = []
    for alias in aliases:
        if alias.kind == "dialledDigits":
            for rule in rules:
                new = rule.match(alias.value)
                if new is not None:
                    if new != alias.value:
                        alias = Alias("dialledDigits", new)
                        changed = True
                    break
        result.append(alias)
    return tuple(result) if changed else aliases
