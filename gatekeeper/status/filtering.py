"""Status-port filters: ``[GkStatus::Filtering]`` and each session's regex lists.

GnuGk lets every status client keep two lists of regular expressions. When
filtering is on, a message reaches the client only if no exclude expression
matches it *and* at least one include expression does; so turning filtering
on with an empty include list silences every event (GnuGk's manual says as
much).  An expression matches anywhere in the line (a search, not a full
match).

Here the filters apply to event lines (RAS, CDR, RouteRequest, ...) handed
out by the factory; the direct replies to a session's own commands are never
filtered.  The section gives each new session its starting lists:

    [GkStatus::Filtering]
    Enable=1
    IncludeFilter=.+
    ExcludeFilter=.RQ
    ExcludeFilter=SCR
    NewRCFOnly=0

``IncludeFilter`` and ``ExcludeFilter`` may repeat.  ``NewRCFOnly`` (RCF lines
only for new registrations, not for re-registrations) is read here and used
by whoever publishes the RCF lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gatekeeper.configfile import ConfigError, IniFile, as_bool, unknown_key

SECTION = "GkStatus::Filtering"


@dataclass(frozen=True, slots=True)
class FilterSettings:
    """``[GkStatus::Filtering]`` as read: the lists every session starts with."""

    enable: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    new_rcf_only: bool = False


def compile_filter(pattern: str) -> re.Pattern[str]:
    """A filter expression, or ValueError saying why it is not one."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"bad regular expression: {error}") from None


def parse_filtering(ini: IniFile) -> tuple[FilterSettings, list[str]]:
    """Read ``[GkStatus::Filtering]``; a bad expression is a ConfigError,
    an unknown key a warning."""
    path = ini.path
    warnings: list[str] = []
    enable = new_rcf_only = False
    include: list[str] = []
    exclude: list[str] = []
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered in ("includefilter", "excludefilter"):
            try:
                compile_filter(value)
            except ValueError as error:
                raise ConfigError(path, SECTION, key, value, str(error)) from None
            (include if lowered == "includefilter" else exclude).append(value)
        elif lowered == "enable":
            enable = as_bool(path, SECTION, key, value)
        elif lowered == "newrcfonly":
            new_rcf_only = as_bool(path, SECTION, key, value)
        else:
            warnings.append(unknown_key(path, SECTION, key))
    return FilterSettings(enable, tuple(include), tuple(exclude), new_rcf_only), warnings


class StatusFilters:
    """One session's filters: on or off, and its include and exclude lists.

    The factory hands a session an event line only if
    ``not filters.enabled or filters.accepts(line)``.
    """

    def __init__(self, enabled: bool = False, include: tuple[str, ...] | list[str] = (),
                 exclude: tuple[str, ...] | list[str] = ()) -> None:
        self.enabled = enabled
        self._include: list[tuple[str, re.Pattern[str]]] = []
        self._exclude: list[tuple[str, re.Pattern[str]]] = []
        for pattern in include:
            self.add_include(pattern)
        for pattern in exclude:
            self.add_exclude(pattern)

    @classmethod
    def from_settings(cls, settings: FilterSettings) -> "StatusFilters":
        return cls(settings.enable, settings.include, settings.exclude)

    # -- the lists (ValueError for a bad expression, IndexError for a bad index)

    @property
    def include(self) -> list[str]:
        return [pattern for pattern, _ in self._include]

    @property
    def exclude(self) -> list[str]:
        return [pattern for pattern, _ in self._exclude]

    def add_include(self, pattern: str) -> None:
        self._include.append((pattern, compile_filter(pattern)))

    def add_exclude(self, pattern: str) -> None:
        self._exclude.append((pattern, compile_filter(pattern)))

    def remove_include(self, index: int) -> None:
        if not 0 <= index < len(self._include):
            raise IndexError(index)
        del self._include[index]

    def remove_exclude(self, index: int) -> None:
        if not 0 <= index < len(self._exclude):
            raise IndexError(index)
        del self._exclude[index]

    # -- the decision

    def accepts(self, line: str) -> bool:
        """GnuGk's rule: shown if no exclude expression matches and some
        include expression does (nothing is shown with no include list)."""
        if any(compiled.search(line) for _, compiled in self._exclude):
            return False
        return any(compiled.search(line) for _, compiled in self._include)
