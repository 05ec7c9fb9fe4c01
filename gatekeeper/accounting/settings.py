"""The accounting sections of the configuration, parsed into frozen objects.

GnuGk's key names and value syntax are kept, so a GnuGk file loads unchanged:

- ``[Gatekeeper::Acct]``: ``Module=control[;event,event,...]``, one line per
  accounting module (``FileAcct=required;stop``).
- ``[FileAcct]``: ``DetailFile``, ``StandardCDRFormat``, ``CDRString``,
  ``TimestampFormat``, ``Rotate``, ``RotateTime``, ``RotateDay``.
- ``[StatusAcct]``: ``StartEvent`` ... ``UnregisterEvent``, ``TimestampFormat``.
- ``[HttpAcct]``: ``Method``, ``<Event>URL`` / ``<Event>Body`` for each event,
  ``TimestampFormat``; and ours for the delivery queue: ``QueueSize``,
  ``RetryMin`` / ``RetryMax`` / ``Timeout`` (milliseconds).
- ``[CallTable]``: ``AcctUpdateInterval`` (seconds between ``update`` events
  of a connected call; 0, the default, sends none; GnuGk raises 1-9 to 10).
  It is the only ``[CallTable]`` key read so far; the others are reported.

Without a ``[Gatekeeper::Acct]`` section the embedded default runs: FileAcct
writing GnuGk's standard CDR line to ``cdr.log`` in the working directory.
With the section, only the modules it names run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gatekeeper.configfile import ConfigError, IniFile, as_bool, as_int, unknown_key

ACCT_SECTION = "Gatekeeper::Acct"
FILE_SECTION = "FileAcct"
STATUS_SECTION = "StatusAcct"
HTTP_SECTION = "HttpAcct"
CALL_TABLE_SECTION = "CallTable"

#: GnuGk: a non-zero AcctUpdateInterval is at least this many seconds.
MIN_UPDATE_INTERVAL = 10

#: Every event name GnuGk accepts in ``[Gatekeeper::Acct]``.
EVENTS = ("start", "stop", "alert", "connect", "update", "register", "unregister",
          "on", "off", "reject")
CONTROLS = ("required", "optional", "sufficient", "alternative")

#: The events each module supports (GnuGk's supported-event masks); a module
#: line without an event list enables all of them.
SUPPORTED_EVENTS: dict[str, frozenset[str]] = {
    "FileAcct": frozenset({"stop"}),
    "StatusAcct": frozenset({"start", "stop", "update", "connect", "alert", "register",
                             "unregister"}),
    "HttpAcct": frozenset(EVENTS),
}

#: GnuGk's global default (``[Gatekeeper::Main] TimestampFormat``).
DEFAULT_TIMESTAMP_FORMAT = "Cisco"

_CALL_ADDRESSES = "%{caller-ip}:%{caller-port}|%{callee-ip}:%{callee-port}|%{CallId}"
#: GnuGk's default StatusAcct templates, keyed by event.
DEFAULT_STATUS_TEMPLATES: dict[str, str] = {
    "start": f"CALL|Start|{_CALL_ADDRESSES}",
    "stop": f"CALL|Stop|{_CALL_ADDRESSES}",
    "update": f"CALL|Update|{_CALL_ADDRESSES}",
    "alert": f"CALL|Alert|{_CALL_ADDRESSES}",
    "connect": f"CALL|Connect|{_CALL_ADDRESSES}",
    "register": "EP|Register|%{endpoint-ip}:%{endpoint-port}|%{aliases}",
    "unregister": "EP|Unregister|%{endpoint-ip}:%{endpoint-port}|%{aliases}",
}


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    """One line of ``[Gatekeeper::Acct]``.

    ``control`` decides, as in GnuGk, whether an event counts as logged
    (see ``gatekeeper.accounting.outcome``); it never keeps a module from
    getting its events and never rejects a call.
    """

    name: str
    control: str = "required"
    events: frozenset[str] = frozenset()

    def handles(self, event: str) -> bool:
        return event in self.events


@dataclass(frozen=True, slots=True)
class Rotation:
    """When the CDR file is rotated.

    ``kind`` is ``none``, ``hourly``, ``daily``, ``weekly``, ``monthly``,
    ``lines`` or ``size``; ``limit`` is the line count or byte size; ``hour``
    and ``minute`` the time of day (hourly uses only ``minute``); ``day`` the
    weekday (0 = Sunday) for weekly, the day of the month (1-31, clamped to
    the month's last day) for monthly.
    """

    kind: str = "none"
    limit: int = 0
    hour: int = 0
    minute: int = 59
    day: int = 0


@dataclass(frozen=True, slots=True)
class FileAcctSettings:
    """``[FileAcct]``. ``cdr_string`` None: GnuGk's standard CDR line."""

    detail_file: str = "cdr.log"
    cdr_string: str | None = None
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    rotation: Rotation = field(default_factory=Rotation)


@dataclass(frozen=True, slots=True)
class StatusAcctSettings:
    """``[StatusAcct]``: one template per event; an empty template sends nothing."""

    templates: tuple[tuple[str, str], ...] = tuple(DEFAULT_STATUS_TEMPLATES.items())
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT

    def template(self, event: str) -> str:
        return dict(self.templates).get(event, "")


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Where one event goes: ``<Event>URL`` and ``<Event>Body``."""

    url: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class HttpAcctSettings:
    """``[HttpAcct]``: GnuGk's keys plus the bounds of our delivery queue."""

    method: str = "POST"
    targets: tuple[tuple[str, HttpTarget], ...] = ()
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    queue_size: int = 10_000
    retry_min: float = 1.0        # seconds
    retry_max: float = 60.0
    timeout: float = 30.0

    def target(self, event: str) -> HttpTarget | None:
        return dict(self.targets).get(event)


def _default_modules() -> tuple[ModuleEntry, ...]:
    return (ModuleEntry("FileAcct", "required", SUPPORTED_EVENTS["FileAcct"]),)


@dataclass(frozen=True, slots=True)
class AcctSettings:
    """Everything the accounting modules need; the default is the embedded one."""

    modules: tuple[ModuleEntry, ...] = field(default_factory=_default_modules)
    file: FileAcctSettings = field(default_factory=FileAcctSettings)
    status: StatusAcctSettings = field(default_factory=StatusAcctSettings)
    http: HttpAcctSettings = field(default_factory=HttpAcctSettings)
    #: ``[CallTable] AcctUpdateInterval``, seconds; 0: no update events.
    update_interval: int = 0

    def module(self, name: str) -> ModuleEntry | None:
        """The ``[Gatekeeper::Acct]`` entry of a module, or None if it is off."""
        for entry in self.modules:
            if entry.name == name:
                return entry
        return None


def parse_acct(ini: IniFile) -> tuple[AcctSettings, list[str]]:
    """Read the accounting sections; bad values raise ConfigError, unknown
    keys and modules come back as warnings."""
    warnings: list[str] = []
    modules = (_parse_modules(ini, warnings) if ACCT_SECTION in ini.sections
               else _default_modules())
    settings = AcctSettings(
        modules=modules,
        file=_parse_file(ini, warnings),
        status=_parse_status(ini, warnings),
        http=_parse_http(ini, warnings),
        update_interval=_parse_call_table(ini, warnings),
    )
    if settings.module("HttpAcct") is not None and not settings.http.targets:
        warnings.append(f"{ini.path}: [{HTTP_SECTION}]: HttpAcct is enabled but no "
                        "<Event>URL is set; it sends nothing")
    return settings, warnings


# -- [Gatekeeper::Acct] -------------------------------------------------------


def _parse_modules(ini: IniFile, warnings: list[str]) -> tuple[ModuleEntry, ...]:
    entries: dict[str, ModuleEntry] = {}
    for key, value in ini.items(ACCT_SECTION):
        name = _canonical_module(key)
        if name is None:
            warnings.append(f"{ini.path}: [{ACCT_SECTION}] {key}: accounting module not "
                            "supported, ignored")
            continue
        entries[name] = _parse_module_entry(ini.path, key, value, name, warnings)
    return tuple(entries.values())


def _canonical_module(key: str) -> str | None:
    for name in SUPPORTED_EVENTS:
        if name.lower() == key.lower():
            return name
    return None


def _parse_module_entry(path: str, key: str, value: str, name: str,
                        warnings: list[str]) -> ModuleEntry:
    """``control[;event,event,...]`` (GnuGk splits on both ``;`` and ``,``)."""
    tokens = [t.strip().lower() for t in re.split(r"[;,]", value) if t.strip()]
    if not tokens:
        raise ConfigError(path, ACCT_SECTION, key, value, "expected control[;event,...]")
    control = tokens[0]
    if control not in CONTROLS:
        raise ConfigError(path, ACCT_SECTION, key, value,
                          f"control must be one of {', '.join(CONTROLS)}")
    supported = SUPPORTED_EVENTS[name]
    if len(tokens) == 1:
        return ModuleEntry(name, control, supported)
    events = set()
    for token in tokens[1:]:
        if token not in EVENTS:
            raise ConfigError(path, ACCT_SECTION, key, value,
                              f"unknown event {token!r} (events: {', '.join(EVENTS)})")
        if token not in supported:
            warnings.append(f"{path}: [{ACCT_SECTION}] {key}: {name} does not log "
                            f"{token!r} events, ignored")
            continue
        events.add(token)
    return ModuleEntry(name, control, frozenset(events))


# -- [CallTable] ---------------------------------------------------------------


def _parse_call_table(ini: IniFile, warnings: list[str]) -> int:
    """``AcctUpdateInterval``: 0 (off) or seconds, at least 10 as in GnuGk."""
    interval = 0
    for key, value in ini.items(CALL_TABLE_SECTION):
        if key.lower() == "acctupdateinterval":
            interval = as_int(ini.path, CALL_TABLE_SECTION, key, value, 0, 86_400 * 365)
            if 0 < interval < MIN_UPDATE_INTERVAL:
                warnings.append(f"{ini.path}: [{CALL_TABLE_SECTION}] {key}={value}: raised to "
                                f"{MIN_UPDATE_INTERVAL} seconds (the least GnuGk allows)")
                interval = MIN_UPDATE_INTERVAL
        else:
            warnings.append(f"{ini.path}: [{CALL_TABLE_SECTION}] {key}: not supported, ignored")
    return interval


# -- [FileAcct] ----------------------------------------------------------------


def _parse_file(ini: IniFile, warnings: list[str]) -> FileAcctSettings:
    path, section = ini.path, FILE_SECTION
    values: dict[str, str] = {}
    known = ("detailfile", "standardcdrformat", "cdrstring", "timestampformat", "rotate",
             "rotatetime", "rotateday")
    for key, value in ini.items(section):
        lowered = key.lower()
        if lowered in known:
            values[lowered] = value
        else:
            warnings.append(unknown_key(path, section, key))
    if values.get("detailfile") == "":
        raise ConfigError(path, section, "DetailFile", "", "must name a file")
    cdr_string = values.get("cdrstring") or None
    # GnuGk: StandardCDRFormat defaults to 1 without a CDRString, else to 0.
    standard = cdr_string is None
    if "standardcdrformat" in values:
        standard = as_bool(path, section, "StandardCDRFormat", values["standardcdrformat"])
    if not standard and cdr_string is None:
        raise ConfigError(path, section, "StandardCDRFormat", values["standardcdrformat"],
                          "a custom format needs CDRString=")
    return FileAcctSettings(
        detail_file=values.get("detailfile", "cdr.log"),
        cdr_string=None if standard else cdr_string,
        timestamp_format=values.get("timestampformat") or DEFAULT_TIMESTAMP_FORMAT,
        rotation=_parse_rotation(path, values),
    )


_WEEKDAYS = {name: number for number, names in enumerate(
    (("sun", "sunday"), ("mon", "monday"), ("tue", "tuesday"), ("wed", "wednesday"),
     ("thu", "thursday"), ("fri", "friday"), ("sat", "saturday"))) for name in names}
_INTERVALS = ("hourly", "daily", "weekly", "monthly")
_SUFFIX = {"lines": {"k": 1000, "m": 1000 * 1000}, "size": {"k": 1024, "m": 1024 * 1024}}


def _parse_rotation(path: str, values: dict[str, str]) -> Rotation:
    text = values.get("rotate", "").strip()
    if not text:
        return Rotation()
    lowered = text.lower()
    if lowered in _INTERVALS:
        return _parse_interval(path, lowered, values)
    kind = {"l": "lines", "s": "size"}.get(lowered[0])
    match = re.fullmatch(r"[ls](\d+)([km]?)", lowered)
    if kind is None or match is None or int(match.group(1)) == 0:
        raise ConfigError(path, FILE_SECTION, "Rotate", text,
                          "use hourly, daily, weekly, monthly, L<lines>[k|m] or S<size>[k|m]")
    factor = _SUFFIX[kind].get(match.group(2), 1)
    return Rotation(kind, limit=int(match.group(1)) * factor)


def _parse_interval(path: str, kind: str, values: dict[str, str]) -> Rotation:
    section = FILE_SECTION
    time_text = values.get("rotatetime")
    if kind == "hourly":
        minute = 59 if time_text is None else as_int(path, section, "RotateTime", time_text, 0, 59)
        return Rotation(kind, minute=minute)
    hour, minute = _parse_time_of_day(path, time_text or "00:59")
    day_text = values.get("rotateday")
    day = 0
    if kind == "weekly":
        day = _parse_weekday(path, day_text or "Sun")
    elif kind == "monthly":
        day = 1 if day_text is None else as_int(path, section, "RotateDay", day_text, 1, 31)
    return Rotation(kind, hour=hour, minute=minute, day=day)


def _parse_time_of_day(path: str, text: str) -> tuple[int, int]:
    """``HH:MM`` or ``HH``."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*(?::\s*(\d{1,2})\s*)?", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2) or 0) > 59:
        raise ConfigError(path, FILE_SECTION, "RotateTime", text, "expected HH:MM (00:00 to 23:59)")
    return int(match.group(1)), int(match.group(2) or 0)


def _parse_weekday(path: str, text: str) -> int:
    lowered = text.strip().lower()
    if lowered in _WEEKDAYS:
        return _WEEKDAYS[lowered]
    if lowered.isdigit() and int(lowered) <= 6:
        return int(lowered)
    raise ConfigError(path, FILE_SECTION, "RotateDay", text,
                      "expected a weekday (Sun..Sat or 0..6, 0 = Sunday)")


# -- [StatusAcct] --------------------------------------------------------------


def _parse_status(ini: IniFile, warnings: list[str]) -> StatusAcctSettings:
    section = STATUS_SECTION
    keys = {f"{event}event": event for event in DEFAULT_STATUS_TEMPLATES}
    templates = dict(DEFAULT_STATUS_TEMPLATES)
    timestamp_format = DEFAULT_TIMESTAMP_FORMAT
    for key, value in ini.items(section):
        lowered = key.lower()
        if lowered in keys:
            templates[keys[lowered]] = value
        elif lowered == "timestampformat":
            timestamp_format = value or DEFAULT_TIMESTAMP_FORMAT
        else:
            warnings.append(unknown_key(ini.path, section, key))
    return StatusAcctSettings(tuple(templates.items()), timestamp_format)


# -- [HttpAcct] ----------------------------------------------------------------


def _parse_http(ini: IniFile, warnings: list[str]) -> HttpAcctSettings:
    path, section = ini.path, HTTP_SECTION
    urls: dict[str, str] = {}
    bodies: dict[str, str] = {}
    values: dict[str, object] = {}
    for key, value in ini.items(section):
        lowered = key.lower()
        event, part = _event_key(lowered)
        if part == "url":
            urls[event] = value
        elif part == "body":
            bodies[event] = value
        elif lowered == "method":
            values["method"] = _parse_method(path, key, value)
        elif lowered == "timestampformat":
            values["timestamp_format"] = value or DEFAULT_TIMESTAMP_FORMAT
        elif lowered == "queuesize":
            values["queue_size"] = as_int(path, section, key, value, 1, 10_000_000)
        elif lowered in ("retrymin", "retrymax", "timeout"):
            field_name = {"retrymin": "retry_min", "retrymax": "retry_max"}.get(lowered, lowered)
            values[field_name] = as_int(path, section, key, value, 1, 86_400_000) / 1000
        else:
            warnings.append(unknown_key(path, section, key))
    values["targets"] = tuple((event, HttpTarget(url, bodies.get(event, "")))
                              for event, url in urls.items() if url)
    settings = HttpAcctSettings(**values)
    if settings.retry_max < settings.retry_min:
        raise ConfigError(path, section, "RetryMax", str(int(settings.retry_max * 1000)),
                          "must not be below RetryMin")
    return settings


def _event_key(lowered: str) -> tuple[str, str]:
    """``stopurl`` -> ("stop", "url"); anything else -> ("", "")."""
    for event in EVENTS:
        for part in ("url", "body"):
            if lowered == event + part:
                return event, part
    return "", ""


def _parse_method(path: str, key: str, value: str) -> str:
    method = value.strip().upper()
    if method not in ("GET", "POST"):
        raise ConfigError(path, HTTP_SECTION, key, value, "must be GET or POST")
    return method
