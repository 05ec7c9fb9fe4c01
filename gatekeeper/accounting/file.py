"""FileAcct: one CDR line per finished call, in a file that rotates.

Each line is written, flushed and fsync'd before ``write_cdr`` returns, so a
CDR the bus has delivered survives a crash of the process or the machine.
The line is GnuGk's standard CDR (the status port's text, made by
``gatekeeper.status.formats``) or the ``CDRString`` template.

Rotation follows GnuGk: by time (hourly at ``RotateTime`` minutes past,
daily/weekly/monthly at ``RotateTime`` on ``RotateDay``), checked with a timer
on the injected clock; by line count or file size, checked after each write.
The rotated file is renamed ``<DetailFile>.YYYYMMDD-HHMMSS`` (local time) and
a new file is opened.  An I/O error is logged and counted, never raised.
"""

from __future__ import annotations

import calendar
import datetime
import os
import time
from typing import BinaryIO

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.accounting.params import call_params, expand, timestamp_formatter
from gatekeeper.accounting.settings import FileAcctSettings, Rotation
from gatekeeper.status.formats import format_event


class FileAcct:
    """Writes CDR lines to ``settings.detail_file``."""

    log = Logger()

    def __init__(self, settings: FileAcctSettings, clock: IReactorTime) -> None:
        self.settings = settings
        self.clock = clock
        self.written = 0
        self.failed = 0
        self.rotations = 0
        self._handle: BinaryIO | None = None
        self._lines = 0
        self._timer: IDelayedCall | None = None
        self._timestamp = timestamp_formatter(settings.timestamp_format)
        self._open_logged()
        self._schedule_rotation()

    @property
    def path(self) -> str:
        return self.settings.detail_file

    def format(self, record: ev.CallDetailRecord) -> str:
        """The line for a CDR: GnuGk's standard one or the CDRString."""
        if self.settings.cdr_string is None:
            return format_event(record) or ""
        return expand(self.settings.cdr_string, call_params(record, self._timestamp))

    def write_cdr(self, record: ev.CallDetailRecord) -> bool:
        """Append the CDR durably; False (logged and counted) if that failed."""
        line = self.format(record)
        try:
            handle = self._handle if self._handle is not None else self._open()
            handle.write(line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as error:
            self.failed += 1
            self._drop_handle()
            self.log.error("FileAcct: CDR of call {number} not written to {path}: {error}",
                           number=record.call_number, path=self.path, error=error)
            return False
        self.written += 1
        self._lines += 1
        if self._limit_reached(handle):
            self.rotate()
        return True

    def rotate(self) -> None:
        """Rename the current file with a timestamp and start a new one."""
        self._drop_handle()
        if os.path.exists(self.path):
            target = self._rotated_name()
            try:
                os.rename(self.path, target)
            except OSError as error:
                self.log.error("FileAcct: rotation of {path} failed: {error}",
                               path=self.path, error=error)
            else:
                self.rotations += 1
                self.log.info("FileAcct: rotated {path} to {target}", path=self.path,
                              target=target)
        self._lines = 0
        self._open_logged()

    def close(self) -> None:
        """Stop the rotation timer and close the file (service stop)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._drop_handle()

    # -- the file --------------------------------------------------------------

    def _open(self) -> BinaryIO:
        # A new file is readable and writable by its owner only (as GnuGk's).
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        handle = os.fdopen(descriptor, "ab")
        if self.settings.rotation.kind == "lines":
            self._lines = _count_lines(self.path)
        self._handle = handle
        return handle

    def _open_logged(self) -> None:
        try:
            self._open()
        except OSError as error:
            self.log.error("FileAcct: cannot open {path}: {error} (retried on the next CDR)",
                           path=self.path, error=error)

    def _drop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError as error:
                self.log.error("FileAcct: closing {path} failed: {error}", path=self.path,
                               error=error)

    def _rotated_name(self) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.clock.seconds()))
        target = f"{self.path}.{stamp}"
        serial = 0
        while os.path.exists(target):      # two rotations in one second: keep both files
            serial += 1
            target = f"{self.path}.{stamp}.{serial}"
        return target

    def _limit_reached(self, handle: BinaryIO) -> bool:
        rotation = self.settings.rotation
        if rotation.kind == "lines":
            return self._lines >= rotation.limit
        if rotation.kind == "size":
            return handle.tell() >= rotation.limit
        return False

    # -- timed rotation --------------------------------------------------------

    def _schedule_rotation(self) -> None:
        now = self.clock.seconds()
        due = next_rotation(self.settings.rotation, now)
        if due is not None:
            self._timer = self.clock.callLater(due - now, self._rotate_on_timer)

    def _rotate_on_timer(self) -> None:
        self._timer = None
        self.rotate()
        self._schedule_rotation()


def _count_lines(path: str) -> int:
    with open(path, "rb") as existing:
        return sum(1 for _ in existing)


def next_rotation(rotation: Rotation, now: float) -> float | None:
    """When the next timed rotation is due (seconds since the epoch, local
    time of day), strictly after ``now``; None without a timed rotation."""
    local = datetime.datetime.fromtimestamp(now)
    if rotation.kind == "hourly":
        due = local.replace(minute=rotation.minute, second=0, microsecond=0)
        step = datetime.timedelta(hours=1)
    elif rotation.kind == "daily":
        due = _at_time(local, rotation)
        step = datetime.timedelta(days=1)
    elif rotation.kind == "weekly":
        weekday = (local.weekday() + 1) % 7             # GnuGk: 0 = Sunday
        due = _at_time(local, rotation) + datetime.timedelta(days=(rotation.day - weekday) % 7)
        step = datetime.timedelta(days=7)
    elif rotation.kind == "monthly":
        return _next_monthly(rotation, local, now)
    else:
        return None
    while due.timestamp() <= now:
        due += step
    return due.timestamp()


def _at_time(local: datetime.datetime, rotation: Rotation) -> datetime.datetime:
    return local.replace(hour=rotation.hour, minute=rotation.minute, second=0, microsecond=0)


def _next_monthly(rotation: Rotation, local: datetime.datetime, now: float) -> float:
    year, month = local.year, local.month
    while True:
        last_day = calendar.monthrange(year, month)[1]
        due = _at_time(local, rotation).replace(year=year, month=month, day=1)
        due = due.replace(day=min(rotation.day, last_day))
        if due.timestamp() > now:
            return due.timestamp()
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
