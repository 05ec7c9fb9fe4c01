"""Gatekeeper-routed call signalling against the real twistd gatekeeper (issue 11).

Starts ``twistd -n gatekeeper --routed`` (through bench/_gkrun.py, its open
file limit raised), registers FakeEndpoints (gatekeeper.testing: RAS over
UDP, call signalling over TCP, all on 127.0.0.1) and measures:

0. baseline, same run: a bare Twisted UDP echo server (own process), round
   trips/s with the same window of requests in flight;
1. routed call setups/s: each call is the caller's ARQ, Setup to the
   gatekeeper, the callee's ARQ (answerCall) on the Setup it gets, its
   CallProceeding, Alerting, Connect relayed back, the caller's
   ReleaseComplete relayed on, DRQ from both sides; ``--window`` calls in
   flight; the time from ARQ to Connect per call (p50/p99);
2. ``--calls`` concurrent established calls (two TCP legs each at the
   gatekeeper): its RSS (/proc/PID/status) with none and with all up, and
   RAS keepalive throughput (lightweight RRQs of ``--probes`` endpoints, one
   outstanding each) with none and with all up;
3. relay latency of one Q.931 message: an Information sent by the caller of
   an established call, until it arrives at the callee, at ``--info-rate``
   messages/s while all the calls of 2 are held (p50/p99).

The gatekeeper CPU share of each phase is read from /proc/PID/stat, the
client's from os.times().

Ephemeral ports: the gatekeeper opens each callee leg bound to
(``--interface`` address, port 0), so every callee leg it has open, and every
one it closed in the last minute (TIME_WAIT, the gatekeeper closes first),
holds a port of the host's ephemeral range exclusively, and the callers'
connections draw from the same range.  Phase 1 before phase 2 ran out of
ports ("Couldn't bind: 98") for ~7 % of the 10,000 held calls, so the held
calls are set up first, and phase 1 runs after they ended; the number of
TIME_WAIT sockets is printed.  Accounting is the embedded default (FileAcct:
one CDR line per call, flushed and fsynced) unless ``--no-cdr``.

    python bench/signalling.py [--seconds 6] [--window 64] [--calls 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import defer, protocol, reactor, task, threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatekeeper.h225 import q931, ras  # noqa: E402
from gatekeeper.testing import (  # noqa: E402
    CalleeScript,
    FakeEndpoint,
    MessageTemplates,
    RasClient,
)

FILES = 65536
SETUP_TARGET = 500          # routed calls/s
RSS_LIMIT_KIB = 1024 * 1024  # 1 GiB
KEEPALIVE_RATIO = 0.8       # within 20 % of the rate with no calls
TICK = os.sysconf("SC_CLK_TCK")

ECHO_SERVER = r"""
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
import sys

class Echo(DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)

port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.callLater(float(sys.argv[1]), reactor.stop)
reactor.run()
"""


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def time_wait_count() -> int:
    """TCP sockets in TIME_WAIT on the host (each holds its local port)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(1 for line in lines if line.split()[3] == "06")
    return count


def ephemeral_ports() -> int:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return high - low + 1


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Meter:
    """Wall time and CPU (gatekeeper's; ours and the callee process's) of one phase."""

    helper: int | None = None       # the callee process, counted as client

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.began = time.monotonic()
        self.gk_cpu = cpu_seconds(pid) if pid else 0.0
        self.own_cpu = self._client()

    def _client(self) -> float:
        return own_cpu() + (cpu_seconds(self.helper) if self.helper else 0.0)

    def stop(self) -> dict:
        wall = time.monotonic() - self.began
        return {"wall": wall,
                "gk": (cpu_seconds(self.pid) - self.gk_cpu) / wall if self.pid else 0.0,
                "client": (self._client() - self.own_cpu) / wall}


# -- baseline: UDP echo -----------------------------------------------------------


class EchoClient(protocol.DatagramProtocol):
    def __init__(self, target, payload: bytes) -> None:
        self.target = target
        self.payload = payload
        self.count = 0
        self.running = False

    def datagramReceived(self, data, addr) -> None:
        self.count += 1
        if self.running:
            self.transport.write(self.payload, self.target)


@defer.inlineCallbacks
def echo_baseline(seconds: float, window: int):
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(seconds + 30)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        probe = FakeEndpoint(["echo"], ("127.0.0.1", 1720), ("127.0.0.1", 0))
        probe.endpoint_id = "1_echo"             # a keepalive RRQ's size, echoed
        client = EchoClient(("127.0.0.1", port), probe.rrq(keepalive=True, lightweight=True))
        listening = reactor.listenUDP(0, client, interface="127.0.0.1")
        client.running = True
        for _ in range(window):
            client.transport.write(client.payload, client.target)
        yield sleep(0.5)
        start_count, meter = client.count, Meter(server.pid)
        yield sleep(seconds)
        result = meter.stop()
        result["rate"] = (client.count - start_count) / result["wall"]
        client.running = False
        yield listening.stopListening()
        return result
    finally:
        server.terminate()
        server.wait()


# -- the callees: a process of their own -------------------------------------------


class Callees:
    """``--role callees``: the callee endpoints, in their own process (so
    each client process holds one leg per call: the open-file limit).  Each
    answers a Setup with its ARQ (answerCall), CallProceeding, Alerting and
    Connect, and sends its DRQ when the ReleaseComplete arrives.  It records
    when each Information arrives; SIGUSR1 writes what it recorded to
    ``--report`` (JSON)."""

    def __init__(self, args) -> None:
        self.args = args
        self.templates = MessageTemplates()
        self.ras: dict[int, RasClient] = {}
        self.failures: list[str] = []
        self.info: list[tuple[str, int, float]] = []
        self.drqs = 0

    @defer.inlineCallbacks
    def run(self):
        for n in range(self.args.pairs):
            endpoint = FakeEndpoint([f"2{n:04d}", f"callee{n}"], ("127.0.0.1", 0),
                                    ("127.0.0.1", 0))
            client = RasClient.listen(reactor, endpoint, ("127.0.0.1", self.args.ras_port),
                                      timeout=2, retries=4)
            self.ras[id(endpoint)] = client
            factory = endpoint.listen_signalling(
                reactor, CalleeScript(), decode=False,
                on_setup=lambda leg, endpoint=endpoint: self.on_setup(endpoint, leg))
            factory.templates = self.templates
            pdu = yield client.request(endpoint.rrq())
            assert pdu.kind == "registrationConfirm", pdu.kind
        print("ready", flush=True)

    @defer.inlineCallbacks
    def on_setup(self, endpoint: FakeEndpoint, leg):
        received = leg.message_received
        seen = [0]

        def record(entry) -> None:
            received(entry)
            if entry.message_type == q931.INFORMATION:
                seen[0] += 1
                self.info.append((leg.call_id.hex(), seen[0], time.time()))

        leg.message_received = record
        leg.wait_for(q931.RELEASE_COMPLETE).addCallbacks(
            lambda _: self.drq(endpoint, leg.call_id), lambda _: None)
        body = leg.setup.message.body
        pdu = yield self.ras[id(endpoint)].request(endpoint.arq(
            (), answer_call=True, call_id=leg.call_id, conference_id=body["conferenceID"],
            crv=leg.crv))
        if pdu.kind != "admissionConfirm":
            self.failures.append(f"callee ARQ: {pdu.kind}")

    @defer.inlineCallbacks
    def drq(self, endpoint: FakeEndpoint, call_id: bytes):
        endpoint.callee.by_call_id.pop(call_id, None)
        if call_id not in endpoint.calls:
            return
        try:
            pdu = yield self.ras[id(endpoint)].request(endpoint.drq(call_id))
        except Exception as error:
            self.failures.append(f"callee DRQ: {error}")
            return
        endpoint.calls.pop(call_id, None)
        self.drqs += 1
        if pdu.kind not in ("disengageConfirm", "disengageReject"):
            self.failures.append(f"callee DRQ: {pdu.kind}")

    def report(self, *_) -> None:
        Path(self.args.report).write_text(json.dumps(
            {"info": self.info, "failures": self.failures[:20], "failed": len(self.failures),
             "drqs": self.drqs,
             "retransmitted": sum(c.retransmitted for c in self.ras.values())}))


# -- the gatekeeper's side of things ------------------------------------------------


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="gk-signalling-"))
        self.ras_port = free_port(socket.SOCK_DGRAM)
        self.signal_port = free_port(socket.SOCK_STREAM)
        self.gk: subprocess.Popen | None = None
        self.callers: list[FakeEndpoint] = []
        self.callees: list[ras.Alias] = []      # their numbers (in the callee process)
        self.ras: dict[int, RasClient] = {}      # id(endpoint) -> client
        self.failures: list[str] = []
        self.setup_latency: list[float] = []
        self.completed = 0
        self.held: list[tuple] = []              # established calls (caller leg, callee leg)

    def start_gatekeeper(self) -> None:
        config = ("[RoutedMode]\nGKRouted=1\n[Gatekeeper::Main]\nTimeToLive=900\n")
        if self.args.no_cdr:
            config += "[Gatekeeper::Acct]\n"
        (self.workdir / "gatekeeper.ini").write_text(config)
        env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_LIFETIME=str(self.args.lifetime))
        self.gk = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=", "gatekeeper",
             "--config", str(self.workdir / "gatekeeper.ini"), "--routed",
             "--call-signal-port", str(self.signal_port), "--interface", "127.0.0.1",
             "--ras-port", str(self.ras_port), "--discovery-port", "0", "--status-port", "0"],
            cwd=self.workdir, env=env, stdout=open(self.workdir / "twistd.log", "wb"),
            stderr=subprocess.STDOUT, preexec_fn=raise_file_limit)

    def start_callees(self) -> None:
        self.report_path = self.workdir / "callees.json"
        self.callee_process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--role", "callees",
             "--ras-port", str(self.ras_port), "--pairs", str(self.args.pairs),
             "--report", str(self.report_path)],
            stdout=subprocess.PIPE, text=True, preexec_fn=raise_file_limit)

    def callee_report(self) -> dict:
        if self.report_path.exists():
            self.report_path.unlink()
        self.callee_process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not self.report_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        return json.loads(self.report_path.read_text())

    @defer.inlineCallbacks
    def wait_ready(self):
        deadline = time.monotonic() + 30
        while b"serving RAS" not in (self.workdir / "twistd.log").read_bytes():
            if time.monotonic() > deadline or self.gk.poll() is not None:
                raise SystemExit("gatekeeper did not start:\n"
                                 + (self.workdir / "twistd.log").read_text())
            yield sleep(0.05)

    def log(self) -> str:
        return (self.workdir / "twistd.log").read_text(errors="replace")

    @defer.inlineCallbacks
    def register(self, name: str, number: str):
        """A caller (or keepalive probe): RAS here, signalling port listening."""
        endpoint = FakeEndpoint([number, name], ("127.0.0.1", 0), ("127.0.0.1", 0))
        client = RasClient.listen(reactor, endpoint, ("127.0.0.1", self.ras_port),
                                  timeout=2, retries=4)
        self.ras[id(endpoint)] = client
        endpoint.listen_signalling(reactor, CalleeScript(), decode=False)
        pdu = yield client.request(endpoint.rrq())
        assert pdu.kind == "registrationConfirm", pdu.kind
        return endpoint

    @defer.inlineCallbacks
    def one_call(self, n: int, hold: bool):
        """One routed call, up to Connect; then released (unless ``hold``)."""
        caller = self.callers[n % len(self.callers)]
        callee = self.callees[n % len(self.callees)]
        began = time.monotonic()
        call_id = ras.new_guid()
        client = self.ras[id(caller)]
        pdu = yield client.request(caller.arq([callee], call_id=call_id))
        if pdu.kind != "admissionConfirm":
            self.failures.append(f"ARQ: {pdu.kind}")
            return
        leg = caller.place_call(reactor, call_id, decode=False, bind=False, timeout=30)
        try:
            yield leg.wait_for(q931.CONNECT)
        except Exception as error:    # the leg closed first
            self.failures.append(f"no Connect: {error}; {leg.names()}; {leg.errors}")
            return
        self.setup_latency.append(time.monotonic() - began)
        if hold:
            self.held.append((caller, call_id, leg))
            return
        yield self.end_call(caller, call_id, leg)

    @defer.inlineCallbacks
    def end_call(self, caller, call_id, leg):
        """The caller hangs up; the gatekeeper closes its leg; its DRQ.
        (The callee process sends its own DRQ on the ReleaseComplete.)"""
        leg.release(q931.CAUSE_NORMAL_CALL_CLEARING)
        yield leg.lost
        answer = yield self.ras[id(caller)].request(caller.drq(call_id))
        if answer.kind not in ("disengageConfirm", "disengageReject"):
            self.failures.append(f"DRQ: {answer.kind}")
        caller.calls.pop(call_id, None)
        self.completed += 1

    @defer.inlineCallbacks
    def calls_in_window(self, count: int | None, seconds: float | None, window: int,
                        hold: bool):
        """Keep ``window`` calls going until ``count`` started or ``seconds`` passed."""
        started = 0
        deadline = time.monotonic() + seconds if seconds else None
        done = defer.Deferred()
        running = 0

        def next_call(_=None):
            nonlocal started, running
            while running < window:
                if (count is not None and started >= count) or \
                        (deadline is not None and time.monotonic() >= deadline):
                    if running == 0 and not done.called:
                        done.callback(started)
                    return
                started += 1
                running += 1
                d = self.one_call(started, hold)
                d.addErrback(lambda f: self.failures.append(f.getErrorMessage()))
                d.addBoth(finished)

        def finished(_):
            nonlocal running
            running -= 1
            reactor.callLater(0, next_call)

        next_call()
        result = yield done
        return result

    @defer.inlineCallbacks
    def release_held(self, window: int):
        """End every held call, ``window`` at a time."""
        held, self.held = self.held, []
        for start in range(0, len(held), window):
            results = yield defer.DeferredList(
                [self.end_call(*h) for h in held[start:start + window]], consumeErrors=True)
            self.failures.extend(f"release: {r.getErrorMessage()}" for ok, r in results if not ok)

    @defer.inlineCallbacks
    def keepalive_rate(self, probes: list[FakeEndpoint], seconds: float):
        """Lightweight RRQs, one outstanding per probe endpoint."""
        count = 0
        stop_at = time.monotonic() + seconds

        @defer.inlineCallbacks
        def loop(endpoint):
            nonlocal count
            client = self.ras[id(endpoint)]
            while time.monotonic() < stop_at:
                pdu = yield client.request(endpoint.rrq(keepalive=True, lightweight=True))
                if pdu.kind != "registrationConfirm":
                    self.failures.append(f"keepalive: {pdu.kind}")
                count += 1

        meter = Meter(self.gk.pid)
        yield defer.gatherResults([loop(p) for p in probes])
        result = meter.stop()
        result["rate"] = count / result["wall"]
        return result

    @defer.inlineCallbacks
    def relay_latency(self, rate: float, seconds: float):
        """Information messages through held calls at ``rate``/s; arrival
        times come from the callee process."""
        sent: dict[tuple[str, int], float] = {}
        counts: dict[bytes, int] = {}
        interval = 1.0 / rate
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            _, call_id, leg = random.choice(self.held)
            counts[call_id] = counts.get(call_id, 0) + 1
            sent[(call_id.hex(), counts[call_id])] = time.time()
            leg.information()
            yield sleep(interval)
        yield sleep(1.0)
        report = yield threads.deferToThread(self.callee_report)
        arrived = {(c, n): t for c, n, t in report["info"]}
        latencies = [arrived[key] - at for key, at in sent.items() if key in arrived]
        return latencies, len(sent) - len(latencies)

    @defer.inlineCallbacks
    def run(self):
        args = self.args
        rows: list[tuple] = []
        # The TIME_WAIT sockets of an earlier run hold ephemeral ports for 60 s.
        waited = time.monotonic()
        while time_wait_count() > 1000 and time.monotonic() - waited < 90:
            yield sleep(1.0)
        if time.monotonic() - waited > 1:
            print(f"waited {time.monotonic() - waited:.0f} s for TIME_WAIT sockets to go",
                  flush=True)
        echo = yield echo_baseline(args.echo_seconds, args.window)
        print(f"echo baseline: {echo['rate']:,.0f} round trips/s", flush=True)

        self.start_gatekeeper()
        try:
            yield self.wait_ready()
            self.start_callees()
            line = yield threads.deferToThread(self.callee_process.stdout.readline)
            assert line.strip() == "ready", line
            Meter.helper = self.callee_process.pid
            for n in range(args.pairs):
                self.callers.append((yield self.register(f"caller{n}", f"1{n:04d}")))
                self.callees.append(ras.parse_alias(f"2{n:04d}"))
            probes = []
            for n in range(args.probes):
                probes.append((yield self.register(f"probe{n}", f"3{n:04d}")))
            yield sleep(0.5)
            rss_idle = rss_kib(self.gk.pid)

            yield self.calls_in_window(200, None, args.window, False)      # warm-up

            # 2. held calls (before 1: see "ephemeral ports" in the module docstring)
            yield sleep(1.0)
            keepalive_none = yield self.keepalive_rate(probes, args.keepalive_seconds)
            rss_none = rss_kib(self.gk.pid)
            meter = Meter(self.gk.pid)
            yield self.calls_in_window(args.calls, None, args.window, True)
            ramp = meter.stop()
            held = len(self.held)
            yield sleep(1.0)
            rss_held = rss_kib(self.gk.pid)
            keepalive_held = yield self.keepalive_rate(probes, args.keepalive_seconds)
            print(f"held calls: {held:,}, RSS {rss_held / 1024:.0f} MiB", flush=True)

            # 3. relay latency while the calls are held
            meter = Meter(self.gk.pid)
            latencies, lost = yield self.relay_latency(args.info_rate, args.info_seconds)
            relay = meter.stop()

            # the held calls end (ReleaseComplete, DRQ from both), window by window
            meter = Meter(self.gk.pid)
            completed = self.completed
            yield self.release_held(args.window)
            teardown = meter.stop()
            teardown["rate"] = (self.completed - completed) / teardown["wall"]
            yield sleep(1.0)

            # 1. call setups per second
            self.setup_latency.clear()
            completed = self.completed
            meter = Meter(self.gk.pid)
            yield self.calls_in_window(None, args.seconds, args.window, False)
            setups = meter.stop()
            setups["rate"] = (self.completed - completed) / setups["wall"]
            setup_latency = list(self.setup_latency)
            time_wait = time_wait_count()
            print(f"routed calls/s: {setups['rate']:,.0f}", flush=True)
            log = self.log()
            callees = yield threads.deferToThread(self.callee_report)
        finally:
            if getattr(self, "callee_process", None) is not None:
                self.callee_process.terminate()
                self.callee_process.wait()
            self.gk.terminate()
            try:
                self.gk.wait(20)
            except subprocess.TimeoutExpired:
                self.gk.kill()

        def ms(value: float) -> str:
            return f"{value * 1000:.2f}"

        def cpu(phase: dict) -> str:
            return f"{phase['gk'] * 100:.0f}% / {phase['client'] * 100:.0f}%"

        def per_rrq(phase: dict) -> str:
            return f"gk {phase['gk'] / phase['rate'] * 1e6:.0f} us CPU each"

        ratio = keepalive_held["rate"] / keepalive_none["rate"]
        rows = [
            ("0. UDP echo round trips/s (baseline)", f"{echo['rate']:,.0f}", "", "", "",
             f"{echo['gk'] * 100:.0f}% / {echo['client'] * 100:.0f}%"),
            (f"1. routed call setups/s, {args.window} in flight", f"{setups['rate']:,.0f}",
             f">= {SETUP_TARGET}", "PASS" if setups["rate"] >= SETUP_TARGET else "FAIL",
             f"{setups['rate'] / echo['rate']:.4f} of echo", cpu(setups)),
            ("   ARQ -> Connect per call p50 / p99 (ms)",
             f"{ms(statistics.median(setup_latency))} / {ms(percentile(setup_latency, 0.99))}",
             "", "", "", ""),
            ("   TIME_WAIT sockets on the host after 1", f"{time_wait:,}", "", "",
             f"ephemeral ports {ephemeral_ports():,}", ""),
            ("2. calls held (2 TCP legs each at the gk)", f"{held:,}",
             f"{args.calls:,}", "PASS" if held >= args.calls else "FAIL",
             f"ramp {ramp['wall']:.1f} s", cpu(ramp)),
            ("   gk RSS: idle / no calls / all held (MiB)",
             f"{rss_idle / 1024:.0f} / {rss_none / 1024:.0f} / {rss_held / 1024:.0f}",
             "<= 1024", "PASS" if rss_held <= RSS_LIMIT_KIB else "FAIL",
             f"{(rss_held - rss_none) / max(1, held):.1f} KiB/call", ""),
            (f"   keepalive RRQ/s, no calls ({args.probes} probes)",
             f"{keepalive_none['rate']:,.0f}", "", "", per_rrq(keepalive_none),
             cpu(keepalive_none)),
            ("   keepalive RRQ/s, all calls held", f"{keepalive_held['rate']:,.0f}",
             ">= 0.80 x", "PASS" if ratio >= KEEPALIVE_RATIO else "FAIL",
             f"ratio {ratio:.2f}; {per_rrq(keepalive_held)}", cpu(keepalive_held)),
            (f"3. Information relay latency p50 / p99 (ms), {args.info_rate:g}/s",
             f"{ms(statistics.median(latencies))} / {ms(percentile(latencies, 0.99))}",
             "", "", f"{len(latencies)} sent, {lost} lost", cpu(relay)),
            ("   held calls released, calls/s", f"{teardown['rate']:,.0f}", "", "",
             "ReleaseComplete + 2 DRQ each", cpu(teardown)),
        ]
        print()
        print(f"Routed call signalling: {args.pairs} caller/callee pairs, accounting "
              f"{'off' if args.no_cdr else 'FileAcct (default)'}, {os.cpu_count()} CPUs, "
              f"load before start {os.getloadavg()[0]:.2f}")
        print()
        header = ("measure", "value", "target", "", "note", "gk / client CPU")
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in rows:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
        print()
        print(f"failures: callers {len(self.failures)}"
              + (f" (first: {self.failures[:3]})" if self.failures else "")
              + f", callees {callees['failed']}"
              + (f" (first: {callees['failures'][:3]})" if callees["failed"] else "")
              + f"; callee DRQs {callees['drqs']:,}")
        print(f"RAS retransmissions (2 s timeout): callers "
              f"{sum(c.retransmitted for c in self.ras.values()):,}, "
              f"callees {callees['retransmitted']:,}")
        print(f"tracebacks in the gatekeeper log: {log.count('Traceback')}")
        cdr = self.workdir / "cdr.log"
        if cdr.exists():
            print(f"CDR lines: {len(cdr.read_text().splitlines()):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="call setup phase")
    parser.add_argument("--window", type=int, default=64, help="calls in flight")
    parser.add_argument("--pairs", type=int, default=10, help="caller/callee endpoint pairs")
    parser.add_argument("--calls", type=int, default=9_950, help="calls held in phase 2")
    parser.add_argument("--probes", type=int, default=8, help="keepalive endpoints")
    parser.add_argument("--keepalive-seconds", type=float, default=3.0)
    parser.add_argument("--info-rate", type=float, default=200.0)
    parser.add_argument("--info-seconds", type=float, default=5.0)
    parser.add_argument("--echo-seconds", type=float, default=3.0)
    parser.add_argument("--no-cdr", action="store_true", help="no accounting at all")
    parser.add_argument("--lifetime", type=float, default=600.0,
                        help="the gatekeeper stops by itself after this (s)")
    parser.add_argument("--role", choices=("bench", "callees"), default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--ras-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_file_limit()
    if args.role == "callees":
        callees = Callees(args)
        signal.signal(signal.SIGUSR1, callees.report)
        reactor.callLater(args.lifetime, reactor.stop)
        reactor.callWhenRunning(callees.run)
        reactor.run()
        return
    bench = Bench(args)

    def failed(failure):
        failure.printTraceback(file=sys.stdout)
        sys.stdout.flush()

    def go():
        d = bench.run()
        d.addErrback(failed)
        d.addBoth(lambda _: reactor.callLater(0, reactor.stop))

    reactor.callLater(0, go)
    reactor.run()


if __name__ == "__main__":
    main()
