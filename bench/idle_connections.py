"""Call signalling connections that never send a Setup (issue 11, bad input).

Starts the real ``twistd -n gatekeeper --routed`` (through bench/_gkrun.py)
with ``[RoutedMode] SetupTimeout`` set, opens N TCP connections to its call
signalling port that send nothing, and reports:

* the gatekeeper's RSS before, with all N open, and after they were dropped
  (from /proc/PID/status), and the bytes per idle connection;
* how many the gatekeeper closed, and when (median and slowest, measured
  from the connection's own start), against SetupTimeout;
* RAS round trips per second (lightweight RRQ keepalives of one endpoint)
  with no idle connections and with all N open: the ratio.

The client raises its own open-file limit and the gatekeeper's (run as root,
or with a hard limit high enough); it uses the epoll reactor.  127.0.0.1 only.

    python bench/idle_connections.py [--connections 10000] [--setup-timeout 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import defer, protocol, reactor, task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatekeeper.testing import FakeEndpoint  # noqa: E402

FILES = 65536


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, max(hard, FILES)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Idle(protocol.Protocol):
    def connectionMade(self) -> None:
        self.factory.opened += 1
        self.began = time.monotonic()

    def dataReceived(self, data: bytes) -> None:
        self.factory.bytes_received += len(data)

    def connectionLost(self, reason=None) -> None:
        self.factory.closed.append(time.monotonic() - self.began)


class IdleFactory(protocol.ClientFactory):
    protocol = Idle

    def __init__(self) -> None:
        self.opened = 0
        self.failed = 0
        self.bytes_received = 0
        self.closed: list[float] = []

    def clientConnectionFailed(self, connector, reason) -> None:
        self.failed += 1


class RasProbe(protocol.DatagramProtocol):
    """One endpoint's lightweight RRQs, one outstanding at a time."""

    def __init__(self, gk: tuple[str, int]) -> None:
        self.gk = gk
        self.endpoint = FakeEndpoint(["bench-ras"], ("127.0.0.1", 1720), ("127.0.0.1", 0))
        self.waiting: defer.Deferred | None = None

    def datagramReceived(self, data: bytes, addr) -> None:
        if self.waiting is not None:
            waiting, self.waiting = self.waiting, None
            waiting.callback(self.endpoint.read(data))

    def ask(self, data: bytes) -> defer.Deferred:
        self.waiting = defer.Deferred()
        self.transport.write(data, self.gk)
        return self.waiting

    @defer.inlineCallbacks
    def register(self):
        self.endpoint.ras_address = ("127.0.0.1", self.transport.getHost().port)
        pdu = yield self.ask(self.endpoint.rrq())
        assert pdu.kind == "registrationConfirm", pdu.kind
        self.endpoint.endpoint_id = pdu.raw["endpointIdentifier"]

    @defer.inlineCallbacks
    def rate(self, seconds: float):
        count, began = 0, time.monotonic()
        while time.monotonic() - began < seconds:
            pdu = yield self.ask(self.endpoint.rrq(keepalive=True, lightweight=True))
            assert pdu.kind == "registrationConfirm", pdu.kind
            count += 1
        return count / (time.monotonic() - began)


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def run(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gk-idle-"))
    signal_port = free_port(socket.SOCK_STREAM)
    ras_port = free_port(socket.SOCK_DGRAM)
    (workdir / "gatekeeper.ini").write_text(
        f"[RoutedMode]\nGKRouted=1\nSetupTimeout={int(args.setup_timeout * 1000)}\n"
        "[Gatekeeper::Main]\nTimeToLive=600\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_LIFETIME=str(args.setup_timeout * 4 + 120))
    gk = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=", "gatekeeper",
         "--config", str(workdir / "gatekeeper.ini"), "--interface", "127.0.0.1",
         "--ras-port", str(ras_port), "--discovery-port", "0", "--status-port", "0",
         "--call-signal-port", str(signal_port)],
        cwd=workdir, env=env, stdout=open(workdir / "twistd.log", "wb"), stderr=subprocess.STDOUT,
        preexec_fn=raise_file_limit)
    try:
        deadline = time.monotonic() + 30
        while b"serving RAS" not in (workdir / "twistd.log").read_bytes():
            if time.monotonic() > deadline or gk.poll() is not None:
                raise SystemExit("gatekeeper did not start:\n"
                                 + (workdir / "twistd.log").read_text())
            yield sleep(0.05)
        probe = RasProbe(("127.0.0.1", ras_port))
        reactor.listenUDP(0, probe, interface="127.0.0.1")
        yield probe.register()
        yield sleep(0.5)
        rss_before = rss_kib(gk.pid)
        rate_before = yield probe.rate(args.ras_seconds)

        factory = IdleFactory()
        began = time.monotonic()
        for n in range(args.connections):
            reactor.connectTCP("127.0.0.1", signal_port, factory, timeout=30)
            if n % 200 == 199:          # paced: ~20,000 connects/s at most
                yield sleep(0.01)
        while factory.opened + factory.failed < args.connections and \
                time.monotonic() - began < args.setup_timeout * 0.8:
            yield sleep(0.05)
        opened_in = time.monotonic() - began
        yield sleep(0.5)
        rss_open = rss_kib(gk.pid)
        rate_open = yield probe.rate(args.ras_seconds)
        still_open = factory.opened - len(factory.closed)

        while len(factory.closed) < factory.opened and \
                time.monotonic() - began < args.setup_timeout * 3 + 30:
            yield sleep(0.1)
        yield sleep(1.0)
        rss_after = rss_kib(gk.pid)
        closed = sorted(factory.closed)
        log = (workdir / "twistd.log").read_text(errors="replace")

        print(f"Idle call signalling connections: {args.connections} opened in "
              f"{opened_in:.1f} s, SetupTimeout {args.setup_timeout:g} s")
        print()
        print(f"| {'measure':42} | {'value':>14} |")
        print(f"|{'-' * 44}|{'-' * 16}|")
        rows = [
            ("connections opened", f"{factory.opened}"),
            ("connections refused/failed", f"{factory.failed}"),
            ("open when RSS was read", f"{still_open}"),
            ("closed by the gatekeeper", f"{len(closed)}"),
            ("bytes the gatekeeper sent on them", f"{factory.bytes_received}"),
            ("closed after: median (s)", f"{statistics.median(closed):.2f}" if closed else "-"),
            ("closed after: slowest (s)", f"{closed[-1]:.2f}" if closed else "-"),
            ("gatekeeper RSS before (MiB)", f"{rss_before / 1024:.1f}"),
            ("gatekeeper RSS, all open (MiB)", f"{rss_open / 1024:.1f}"),
            ("gatekeeper RSS after the drop (MiB)", f"{rss_after / 1024:.1f}"),
            ("RSS per idle connection (KiB)",
             f"{(rss_open - rss_before) / max(1, still_open):.2f}"),
            ("RAS keepalives/s, no idle connections", f"{rate_before:.0f}"),
            ("RAS keepalives/s, all open", f"{rate_open:.0f}"),
            ("ratio (open / none)", f"{rate_open / rate_before:.2f}"),
            ("tracebacks in the gatekeeper log", f"{log.count('Traceback')}"),
        ]
        for name, value in rows:
            print(f"| {name:42} | {value:>14} |")
    finally:
        gk.terminate()
        try:
            gk.wait(15)
        except subprocess.TimeoutExpired:
            gk.kill()
        reactor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--setup-timeout", type=float, default=20.0,
                        help="[RoutedMode] SetupTimeout in seconds (default 20)")
    parser.add_argument("--ras-seconds", type=float, default=3.0)
    args = parser.parse_args()
    raise_file_limit()
    reactor.callWhenRunning(lambda: run(args).addErrback(lambda f: (f.printTraceback(),
                                                                      reactor.stop())))
    reactor.run()


if __name__ == "__main__":
    main()
