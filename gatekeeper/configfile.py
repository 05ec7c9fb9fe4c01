"""The low layer of configuration: GnuGk's INI dialect and typed value readers.

Feature modules (accounting, manhole, status filters, virtual queues) read
their own sections with these helpers; :mod:`gatekeeper.config` puts the
pieces together.  Keeping this apart lets those modules import it without a
cycle through ``config``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatekeeper.errors import GatekeeperError


class ConfigError(GatekeeperError):
    """A configuration file that cannot be used, and exactly where."""

    def __init__(self, path: str, section: str, key: str, value: str, problem: str) -> None:
        self.path, self.section, self.key, self.value, self.problem = path, section, key, value, problem
        where = f"[{section}] " if section else ""
        if key.startswith("line "):
            where += f"{key}: {value!r}"       # a line that is no setting
        elif key:
            where += f"{key}={value}"
        super().__init__(f"{path}: {where.strip()}: {problem}" if where else f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class IniFile:
    """The raw file: sections in order, each a tuple of (key, value) pairs."""

    path: str
    sections: dict[str, tuple[tuple[str, str], ...]]

    def items(self, section: str) -> tuple[tuple[str, str], ...]:
        return self.sections.get(section, ())

    def get(self, section: str, key: str) -> str | None:
        """The last value of ``key`` (case-insensitive) in ``section``."""
        found = None
        lowered = key.lower()
        for name, value in self.items(section):
            if name.lower() == lowered:
                found = value
        return found

    def with_value(self, section: str, key: str, value: str) -> "IniFile":
        """A copy where ``key`` in ``section`` has ``value`` (the section is
        created if needed; earlier values of the key are replaced)."""
        sections = dict(self.sections)
        lowered = key.lower()
        items = [(k, v) for k, v in sections.get(section, ()) if k.lower() != lowered]
        items.append((key, value))
        sections[section] = tuple(items)
        return IniFile(self.path, sections)

    def without(self, section: str, key: str | None = None) -> "IniFile":
        """A copy without ``key`` in ``section``, or without the whole section."""
        sections = dict(self.sections)
        if key is None:
            sections.pop(section, None)
        elif section in sections:
            lowered = key.lower()
            sections[section] = tuple((k, v) for k, v in sections[section]
                                      if k.lower() != lowered)
        return IniFile(self.path, sections)


def read_ini(text: str, path: str = "<string>") -> IniFile:
    """Parse GnuGk's INI dialect; a line that is neither is a ConfigError."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(path, current or "", f"line {number}", line, "bad section header")
            current = line[1:-1].strip()
            sections.setdefault(current, [])
            continue
        if current is None:
            raise ConfigError(path, "", f"line {number}", line, "a setting before any [Section]")
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(path, current, f"line {number}", line, "expected key=value")
        sections[current].append((key.strip(), value.strip()))
    return IniFile(path, {name: tuple(items) for name, items in sections.items()})


def as_int(path: str, section: str, key: str, value: str, low: int, high: int) -> int:
    """A whole number in [low, high], or a ConfigError naming where."""
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(path, section, key, value, "not a whole number") from None
    if not low <= number <= high:
        raise ConfigError(path, section, key, value, f"must be between {low} and {high}")
    return number


def as_bool(path: str, section: str, key: str, value: str) -> bool:
    """GnuGk's booleans: 1/0, true/false, yes/no, on/off, enable/disable."""
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on", "enable"):
        return True
    if lowered in ("0", "false", "no", "off", "disable"):
        return False
    raise ConfigError(path, section, key, value, "not a boolean (use 1 or 0)")


def unknown_key(path: str, section: str, key: str) -> str:
    """The warning text for a key this gatekeeper does not read."""
    return f"{path}: [{section}] {key}: unknown key, ignored"
