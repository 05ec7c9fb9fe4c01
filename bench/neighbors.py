"""Two neighbour gatekeepers on 127.0.0.1: location requests and admissions
through a neighbour (issue 12).  A script, not a test.

    python bench/neighbors.py [--seconds 5] [--window 32] [--rate 200]

Starts, in one run:

* a bare Twisted UDP echo server (own process): the baseline of what one
  Python process answering datagrams does on this machine, same run;
* GK1 and GK2: two real ``twistd -n gatekeeper`` processes (through
  bench/_gkrun.py), direct mode, each the other's neighbour
  ([RasSrv::Neighbors] GnuGk type, SendPrefixes=*, NeighborTimeout=2),
  accounting off (an empty [Gatekeeper::Acct]: the embedded FileAcct
  fsyncs one CDR per DRQ, which made the disk, not the gatekeeper, the limit
  of the ARQ+DRQ phases: ~2,200 pairs/s with GK1 at ~70% of a core).

Endpoints registered over RAS: ``--callers`` callers on GK1 (1000...,
each on its own UDP socket), as many local callees on GK1 (1100...) and
remote callees on GK2 (2000...).  Then it measures:

a1. LRQ -> LCF round trips/s at GK2: the load generator plays GK1's side: its
    LRQs (for the aliases registered at GK2, replyAddress its own socket)
    come from 127.0.0.1, GK1's configured neighbour address.  GK2 answers
    LRQs only from a neighbour's IP; a source port that is not a neighbour's
    RAS port falls back to the first neighbour at that IP
    (NeighborSettings.sender_at), which is GK1 here;
a2. the real thing: ARQ at GK1 for an alias registered at GK2 (GK1 sends its
    LRQ to GK2, waits for the LCF, answers ACF), each followed by its DRQ
    (DCF) so that the call table stays flat: ARQ+DRQ pairs/s; and the same
    pairs for a local callee, for comparison;
    GK1 answers each ARQ that waits for a neighbour with RequestInProgress
    first (counted in the 'kinds' line); the generator keeps waiting;
b.  ARQ -> ACF latency p50/p99 at a moderate, paced load (``--rate`` ARQs/s,
    open loop), local callee and neighbour's callee in alternating slices
    of the same run (so the machine's noise hits both), the echo latency at
    the same rate;
c.  UDP echo round trips/s with the same window.

Throughput is a closed loop keeping ``--window`` requests in flight (spread
over the sockets), the first ``--warmup`` second dropped.  Requests are
pre-encoded with FakeEndpoint (gatekeeper.testing) and only their
requestSeqNum and call identifier are patched in (checked against a real
encoding); answers are classified by their CHOICE index and matched by
socket and requestSeqNum (unique per socket, so no retransmission cache ever
answers).  The machine has 2 cores: each phase prints the CPU share of GK1,
GK2, the echo server, the generator and everything else (/proc), which says
what limited it.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gatekeeper.h225 import codec, ras  # noqa: E402
from gatekeeper.testing import FakeEndpoint  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
REPLY_TIMEOUT = 2.0          # an answer later than this is lost
TTL = 3600

ECHO_SERVER = """
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
class Echo(DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)
port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
reactor.callLater(float(sys.argv[1]), reactor.stop)
print(port.getHost().port, flush=True)
reactor.run()
"""


# -- processes ----------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def code_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cd",
                               "--date=format:%Y-%m-%d %H:%M"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "gatekeeper"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    dirty = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted: {', '.join(dirty)}" if dirty else "")


class Process:
    def __init__(self, name: str, popen: subprocess.Popen, port: int,
                 log: Path | None = None) -> None:
        self.name, self.popen, self.port, self.log = name, popen, port, log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        try:
            return cpu_seconds(self.pid)
        except OSError:
            return 0.0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_echo(lifetime: float) -> Process:
    popen = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(lifetime)],
                             stdout=subprocess.PIPE, text=True)
    return Process("echo", popen, int(popen.stdout.readline()))


def gk_config(name: str, other: str, other_port: int) -> str:
    return (f"[Gatekeeper::Main]\nName={name}\nTimeToLive={TTL}\n"
            f"[RasSrv::Neighbors]\n{other}=GnuGk\n"
            f"[Neighbor::{other}]\nHost=127.0.0.1:{other_port}\nSendPrefixes=*\n"
            "[RasSrv::LRQFeatures]\nNeighborTimeout=2\nSendRetries=1\n"
            # no accounting: the embedded FileAcct fsyncs a CDR per call (DRQ),
            # which would measure the disk, not the neighbours
            "[Gatekeeper::Acct]\n")


def start_gatekeepers(workdir: Path, lifetime: float) -> tuple[Process, Process]:
    ports = {"GK1": free_port(), "GK2": free_port()}
    env = dict(os.environ, BENCH_LIFETIME=str(lifetime))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    started = {}
    for name, other in (("GK1", "GK2"), ("GK2", "GK1")):
        directory = workdir / name
        directory.mkdir()
        (directory / "gatekeeper.ini").write_text(gk_config(name, other, ports[other]))
        log = directory / "twistd.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=",
                 "gatekeeper", "--config", str(directory / "gatekeeper.ini"),
                 "--interface", "127.0.0.1", "--ras-port", str(ports[name]),
                 "--discovery-port", "0", "--status-port", "0"],
                cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT)
        started[name] = Process(name, popen, ports[name], log)
    deadline = time.monotonic() + 60
    for process in started.values():
        while "serving RAS" not in process.log.read_text(errors="replace"):
            if process.popen.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{process.name} did not start:\n"
                                 + process.log.read_text(errors="replace"))
            time.sleep(0.05)
    return started["GK1"], started["GK2"]


# -- pre-encoded requests -----------------------------------------------------------


def _seq_bytes(seq: int) -> bytes:          # INTEGER (1..65535) in two octets, value - 1
    return (seq - 1).to_bytes(2, "big")


GUID_A, GUID_B = bytes(range(1, 17)), bytes(range(101, 117))


class Template:
    """``build(seq, guid)`` encoded once; requestSeqNum (and the call
    identifier's GUID, wherever it occurs) patched in place."""

    def __init__(self, build, with_guid: bool) -> None:
        a, b = build(0x1235, GUID_A), build(0xABCE, GUID_B)
        if len(a) != len(b):
            raise AssertionError("the patched fields change the length")
        self.base = bytes(a)
        seqs = [o for o in range(len(a) - 1)
                if a[o:o + 2] == _seq_bytes(0x1235) and b[o:o + 2] == _seq_bytes(0xABCE)]
        if len(seqs) != 1:
            raise AssertionError(f"requestSeqNum found at {seqs}")
        self.seq_offset = seqs[0]
        self.guid_offsets = [o for o in range(len(a) - 15)
                             if a[o:o + 16] == GUID_A and b[o:o + 16] == GUID_B] \
            if with_guid else []
        if with_guid and not self.guid_offsets:
            raise AssertionError("GUID not found")
        covered = set(range(self.seq_offset, self.seq_offset + 2))
        for o in self.guid_offsets:
            covered.update(range(o, o + 16))
        if any(a[i] != b[i] for i in range(len(a)) if i not in covered):
            raise AssertionError("unexpected differing bytes")
        check = os.urandom(16)
        if self.patch(777, check) != build(777, check):
            raise AssertionError("patched template differs from a real encoding")

    def patch(self, seq: int, guid: bytes | None = None) -> bytes:
        buf = bytearray(self.base)
        buf[self.seq_offset:self.seq_offset + 2] = _seq_bytes(seq)
        for o in self.guid_offsets:
            buf[o:o + 16] = guid
        return bytes(buf)


class Replies:
    """CHOICE index -> (kind, offset of requestSeqNum) for the answers we expect."""

    def __init__(self) -> None:
        root, _ = codec.choice_alternatives("RasMessage")
        self.index = {name: root.index(name) for name in root}
        samples = {
            "locationConfirm": lambda s: ras.lcf(s, ("10.0.0.1", 1720), ("10.0.0.1", 1719),
                                                 [ras.parse_alias("2000")]),
            "locationReject": lambda s: ras.lrj(s, "requestDenied"),
            "admissionConfirm": lambda s: ras.acf(s, 1280, ("10.0.0.1", 1720)),
            "admissionReject": lambda s: ras.arj(s, "calledPartyNotRegistered"),
            "disengageConfirm": lambda s: ras.dcf(s),
            "disengageReject": lambda s: ras.drj(s, "notRegistered"),
        }
        self.table: list[tuple[str, int] | None] = [None] * 32
        for name, make in samples.items():
            a, b = codec.encode_ras(make(0x1235)), codec.encode_ras(make(0xABCE))
            index = (a[0] >> 2) & 0x1F
            if a[0] & 0x80 or root[index] != name:
                raise AssertionError(f"unexpected CHOICE index for {name}")
            offset = next(o for o in range(1, 6) if a[o:o + 2] == b"\x12\x34"
                          and b[o:o + 2] == b"\xab\xcd")
            self.table[index] = (name, offset)

    def classify(self, data: bytes) -> tuple[str, int]:
        """(kind, requestSeqNum); kind '?' for anything unexpected."""
        if not data:
            return "?", -1
        if data[0] & 0x80:            # an extension alternative (requestInProgress...)
            try:
                pdu = ras.parse(data)
            except Exception:
                return "?", -1
            return pdu.kind, pdu.seq
        entry = self.table[(data[0] >> 2) & 0x1F]
        if entry is None or len(data) < entry[1] + 2:
            return "?", -1
        return entry[0], int.from_bytes(data[entry[1]:entry[1] + 2], "big") + 1


# -- the load generator -------------------------------------------------------------


class Sock:
    """One UDP socket of the generator, connected to one server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.s.bind(("127.0.0.1", 0))
        self.s.connect(target)
        self.s.setblocking(False)
        self.address = self.s.getsockname()
        self.seq = 0
        self.pending: dict[int, list] = {}     # seq -> [op, stage, sent at, give up at]

    def next_seq(self) -> int:
        self.seq = self.seq % 65535 + 1
        return self.seq

    def request(self, payload: bytes, timeout: float = 3.0) -> bytes:
        """A blocking request/answer (registration only)."""
        self.s.send(payload)
        ready, _, _ = select.select([self.s], [], [], timeout)
        if not ready:
            raise SystemExit("no answer while registering")
        return self.s.recv(8192)


class Workload:
    """What one operation is: its requests, in stages; ``first`` gives the
    first request, ``answer`` the next one (or True: done, False: failed)."""

    def __init__(self, name: str, sockets: list[Sock]) -> None:
        self.name, self.sockets = name, sockets


class Echo(Workload):
    def __init__(self, sockets: list[Sock], payload: bytes) -> None:
        super().__init__("echo", sockets)
        self.payload = payload
        self.seq_offset = 0

    def first(self, sock: Sock, seq: int, op):
        return seq.to_bytes(2, "big") + self.payload[2:], "echo"

    def answer(self, sock, op, stage, kind, data):
        return True


class Lrq(Workload):
    """LRQ for the aliases of GK2's callees, from the generator's sockets."""

    def __init__(self, sockets: list[Sock], aliases: list[str]) -> None:
        super().__init__("LRQ", sockets)
        self.templates = {}
        for sock in sockets:
            self.templates[sock.address] = [
                Template(lambda seq, _g, a=alias, r=sock.address: codec.encode_ras(
                    ras.lrq(seq, [ras.parse_alias(a)], r, gatekeeper_id="GK1")), False)
                for alias in aliases]
        self.k = 0

    def first(self, sock: Sock, seq: int, op):
        templates = self.templates[sock.address]
        self.k += 1
        return templates[self.k % len(templates)].patch(seq), "LRQ"

    def answer(self, sock, op, stage, kind, data):
        return kind == "locationConfirm"


class Calls(Workload):
    """ARQ for a callee (local or the neighbour's), then its DRQ; the ARQ ->
    ACF time is the latency recorded."""

    def __init__(self, name: str, callers: list[tuple[Sock, FakeEndpoint]],
                 callees: list[str]) -> None:
        super().__init__(name, [sock for sock, _ in callers])
        self.arqs, self.drqs = {}, {}
        for n, (sock, ep) in enumerate(callers):
            callee = callees[n % len(callees)]

            def arq(seq, guid, ep=ep, callee=callee):
                ep._seq, ep._crv = seq - 1, 99
                return ep.arq([callee], call_id=guid)

            def drq(seq, guid, ep=ep):
                ep._crv = 99
                ep.arq(["x"], call_id=guid)
                ep._seq = seq - 1
                return ep.drq(guid)

            self.arqs[sock.address] = Template(arq, True)
            self.drqs[sock.address] = Template(drq, True)
            ep.calls.clear()
        self.prefix = os.urandom(8)
        self.count = 0

    def first(self, sock: Sock, seq: int, op):
        self.count += 1
        op.append(self.prefix + self.count.to_bytes(8, "big"))
        return self.arqs[sock.address].patch(seq, op[-1]), "ARQ"

    def answer(self, sock, op, stage, kind, data):
        if stage == "ARQ":
            if kind != "admissionConfirm":
                return False
            return self.drqs[sock.address], "DRQ"
        return kind == "disengageConfirm"


class Generator:
    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self.poll = select.epoll()
        self.by_fd: dict[int, Sock] = {}

    def add(self, sock: Sock) -> None:
        self.by_fd[sock.s.fileno()] = sock
        self.poll.register(sock.s.fileno(), select.EPOLLIN)

    def run(self, workload: Workload, duration: float, warmup: float, window: int = 0,
            rate: float = 0.0, processes: tuple[Process, ...] = ()) -> dict:
        """Closed loop (``window`` in flight) or open loop (``rate`` ops/s);
        the result counts only what ended after the warm-up."""
        sockets = workload.sockets
        echo = isinstance(workload, Echo)
        classify = self.replies.classify
        ok = failed = lost = unmatched = rips = 0
        kinds: dict[str, int] = {}
        latency: list[float] = []
        in_flight = 0
        started = time.monotonic()
        measure_from = started + warmup
        end = measure_from + duration
        meter = None
        turn = 0

        def start(sock: Sock, now: float) -> None:
            nonlocal in_flight
            seq = sock.next_seq()
            op: list = []
            payload, stage = workload.first(sock, seq, op)
            sock.pending[seq] = [op, stage, now, now + REPLY_TIMEOUT]
            in_flight += 1
            try:
                sock.s.send(payload)
            except BlockingIOError:
                pass

        now = time.monotonic()
        if window:
            for i in range(window):
                start(sockets[i % len(sockets)], now)
        next_start = now
        last_sweep = now
        while True:
            now = time.monotonic()
            if meter is None and now >= measure_from:
                ok = failed = lost = unmatched = rips = 0
                kinds.clear()
                latency.clear()
                meter = (now, own_cpu(), machine_busy(), [p.cpu() for p in processes])
            if now >= end:
                break
            if rate:
                while next_start <= now:
                    start(sockets[turn % len(sockets)], now)
                    turn += 1
                    next_start += 1.0 / rate
                timeout = max(0.0, min(next_start, end) - now)
            else:
                timeout = min(0.05, end - now)
            for fd, _ in self.poll.poll(timeout):
                sock = self.by_fd[fd]
                while True:
                    try:
                        data = sock.s.recv(8192)
                    except BlockingIOError:
                        break
                    t = time.monotonic()
                    if echo:
                        kind, seq = "echo", int.from_bytes(data[:2], "big")
                    else:
                        kind, seq = classify(data)
                    kinds[kind] = kinds.get(kind, 0) + 1
                    entry = sock.pending.get(seq)
                    if entry is None:
                        unmatched += 1
                        continue
                    if kind == "requestInProgress":
                        rips += 1
                        entry[3] = t + 10          # keep waiting (as an endpoint would)
                        continue
                    op, stage, sent, _ = entry
                    if stage in ("ARQ", "LRQ", "echo"):
                        latency.append(t - sent)
                    outcome = workload.answer(sock, op, stage, kind, data)
                    del sock.pending[seq]
                    if isinstance(outcome, tuple):
                        template, stage = outcome
                        nseq = sock.next_seq()
                        sock.pending[nseq] = [op, stage, t, t + REPLY_TIMEOUT]
                        try:
                            sock.s.send(template.patch(nseq, op[-1]))
                        except BlockingIOError:
                            pass
                        continue
                    in_flight -= 1
                    if outcome:
                        ok += 1
                    else:
                        failed += 1
                    if window:
                        start(sock, t)
            if now - last_sweep > 0.25:
                last_sweep = now
                for sock in sockets:
                    stale = [seq for seq, entry in sock.pending.items() if now > entry[3]]
                    for seq in stale:
                        del sock.pending[seq]
                        lost += 1
                        in_flight -= 1
                        if window:
                            start(sock, now)
        t0, gen0, busy0, cpu0 = meter
        wall = time.monotonic() - t0
        shares = {p.name: (p.cpu() - c) / wall for p, c in zip(processes, cpu0)}
        gen = (own_cpu() - gen0) / wall
        # /proc/stat and the per-process counters tick apart: a few % of noise
        others = max(0.0, (machine_busy() - busy0) / wall - gen - sum(shares.values()))
        # drain what is still in flight, so that the next phase starts clean
        drain_end = time.monotonic() + REPLY_TIMEOUT
        while any(s.pending for s in sockets) and time.monotonic() < drain_end:
            for fd, _ in self.poll.poll(0.05):
                sock = self.by_fd[fd]
                while True:
                    try:
                        data = sock.s.recv(8192)
                    except BlockingIOError:
                        break
                    kind, seq = ("echo", int.from_bytes(data[:2], "big")) if echo \
                        else classify(data)
                    if kind == "requestInProgress":
                        continue
                    entry = sock.pending.pop(seq, None)
                    if entry is not None and entry[1] == "ARQ" and kind == "admissionConfirm":
                        template = workload.drqs[sock.address]
                        nseq = sock.next_seq()
                        now = time.monotonic()
                        sock.pending[nseq] = [entry[0], "DRQ", now, now + REPLY_TIMEOUT]
                        sock.s.send(template.patch(nseq, entry[0][-1]))
        for s in sockets:
            s.pending.clear()
        return {"rate": ok / wall, "ok": ok, "failed": failed, "lost": lost,
                "unmatched": unmatched, "rip": rips, "kinds": kinds, "latency": latency, "cpu": shares,
                "gen": gen, "others": others, "wall": wall}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the run ------------------------------------------------------------------------


def register(target: int, aliases: list[str], own_socket: bool,
             shared: Sock | None = None) -> list[tuple[Sock, FakeEndpoint]]:
    """Register one endpoint per alias (RRQ/RCF, blocking); each on its own
    socket (callers) or all from ``shared`` (callees, never asked anything)."""
    out = []
    for alias in aliases:
        sock = Sock(("127.0.0.1", target)) if own_socket else shared
        # a distinct callSignalAddress per endpoint (nobody calls it: direct mode)
        ep = FakeEndpoint([alias], ("127.0.0.1", 20000 + int(alias)), sock.address,
                          time_to_live=TTL)
        ep._seq = sock.next_seq() - 1
        pdu = ep.read(sock.request(ep.rrq()))
        if pdu.kind != "registrationConfirm":
            raise SystemExit(f"{alias} not registered: {pdu.kind}")
        out.append((sock, ep))
    return out


def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-neighbors-"))
    lifetime = 60 + 12 * (args.seconds + args.warmup + 3) + 4 * args.latency_seconds
    echo = gk1 = gk2 = None
    results: dict = {}
    try:
        echo = start_echo(lifetime)
        gk1, gk2 = start_gatekeepers(workdir, lifetime)
        procs = (gk1, gk2, echo)
        replies = Replies()
        gen = Generator(replies)
        n = args.callers
        callers = register(gk1.port, [str(1000 + i) for i in range(n)], True)
        local_sock = Sock(("127.0.0.1", gk1.port))
        remote_sock = Sock(("127.0.0.1", gk2.port))
        local = [str(1100 + i) for i in range(n)]
        remote = [str(2000 + i) for i in range(n)]
        register(gk1.port, local, False, local_sock)
        register(gk2.port, remote, False, remote_sock)
        for sock, _ in callers:
            gen.add(sock)
        lrq_socks = [Sock(("127.0.0.1", gk2.port)) for _ in range(min(n, 16))]
        echo_socks = [Sock(("127.0.0.1", echo.port)) for _ in range(min(n, 16))]
        for sock in lrq_socks + echo_socks:
            gen.add(sock)
        probe = FakeEndpoint(["1000"], ("127.0.0.1", 1720), ("127.0.0.1", 0))
        probe.endpoint_id = "1234567_endp"
        echo_payload = probe.arq(["2000"])          # an ARQ's size
        loads = {
            "echo": Echo(echo_socks, echo_payload),
            "LRQ": Lrq(lrq_socks, remote),
            "ARQ local": Calls("ARQ local", callers, local),
            "ARQ neighbour": Calls("ARQ neighbour", callers, remote),
        }
        # sanity: one of each gets the expected answer
        for name in ("LRQ", "ARQ local", "ARQ neighbour"):
            check = gen.run(loads[name], 0.3, 0.0, window=1, processes=procs)
            if not check["ok"]:
                raise SystemExit(f"{name}: no expected answer ({check['kinds']}):\n"
                                 + gk1.log.read_text(errors="replace")[-3000:])
        print(f"code: {code_state()}", flush=True)
        print(f"GK1 pid {gk1.pid} :{gk1.port}, GK2 pid {gk2.pid} :{gk2.port}, echo pid"
              f" {echo.pid}; {n} callers on GK1, {n} callees on each; window {args.window},"
              f" {args.seconds:g} s per saturation phase, latency at {args.rate:g}/s",
              flush=True)

        def phase(label, load, **kw):
            result = gen.run(loads[load], processes=procs, **kw)
            results[label] = result
            cpu = " ".join(f"{k} {v:.0%}" for k, v in result["cpu"].items())
            print(f"  {label:<28} {result['rate']:>9,.0f}/s ok {result['ok']} failed"
                  f" {result['failed']} lost {result['lost']} | cpu {cpu} gen"
                  f" {result['gen']:.0%} others {result['others']:.0%}", flush=True)

        sat = dict(duration=args.seconds, warmup=args.warmup, window=args.window)
        phase("echo", "echo", **sat)
        phase("LRQ", "LRQ", **sat)
        phase("ARQ+DRQ neighbour", "ARQ neighbour", **sat)
        phase("ARQ+DRQ local", "ARQ local", **sat)
        # latency: alternating slices, same rate
        slices = 4
        merged: dict[str, list[float]] = {"echo": [], "ARQ local": [], "ARQ neighbour": []}
        cpu: dict[str, list[dict]] = {k: [] for k in merged}
        for i in range(slices):
            for load in merged:
                result = gen.run(loads[load], args.latency_seconds / slices, 0.3,
                                 rate=args.rate, processes=procs)
                merged[load] += result["latency"]
                cpu[load].append(result)
                if result["lost"] or result["failed"]:
                    print(f"  latency slice {load}: lost {result['lost']} failed"
                          f" {result['failed']}", flush=True)
        for load, values in merged.items():
            results[f"latency {load}"] = {
                "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                "count": len(values),
                "cpu": {p.name: statistics.mean(r["cpu"][p.name] for r in cpu[load])
                        for p in procs},
                "gen": statistics.mean(r["gen"] for r in cpu[load])}
            r = results[f"latency {load}"]
            print(f"  latency {load:<20} p50 {r['p50'] * 1e3:.3f} ms p99 {r['p99'] * 1e3:.3f}"
                  f" ms ({r['count']} samples)", flush=True)
        # the gatekeepers' view
        for process in (gk1, gk2):
            problems = [line for line in process.log.read_text(errors="replace").splitlines()
                        if "Traceback" in line or "rror" in line]
            if problems:
                print(f"NOTE: {process.name} log: {len(problems)} problem lines, e.g."
                      f" {problems[0][:200]}", flush=True)
    finally:
        for process in (echo, gk1, gk2):
            if process is not None:
                process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def table(r: dict) -> None:
    echo = r["echo"]["rate"]
    echo_lat = r["latency echo"]
    rows = []

    def shares(res):
        return " ".join(f"{k} {v:.0%}" for k, v in res["cpu"].items() if v >= 0.005) \
            + f" gen {res['gen']:.0%}"

    rows.append(("c. UDP echo round trips/s", f"{echo:,.0f}", "1", shares(r["echo"])))
    rows.append(("a1. LRQ->LCF round trips/s (at GK2)", f"{r['LRQ']['rate']:,.0f}",
                 f"{r['LRQ']['rate'] / echo:.3f}", shares(r["LRQ"])))
    for label in ("ARQ+DRQ neighbour", "ARQ+DRQ local"):
        res = r[label]
        rows.append((f"a2. {label} pairs/s (at GK1)", f"{res['rate']:,.0f}",
                     f"{res['rate'] / echo:.3f}", shares(res)))
    for key, label in (("p50", "p50"), ("p99", "p99")):
        rows.append((f"c. echo latency {label} ms", f"{echo_lat[key] * 1e3:.3f}", "1",
                     shares(echo_lat)))
        for load in ("ARQ local", "ARQ neighbour"):
            res = r[f"latency {load}"]
            rows.append((f"b. {load} ARQ->ACF {label} ms", f"{res[key] * 1e3:.3f}",
                         f"{res[key] / echo_lat[key]:.1f}x", shares(res)))
    ratio50 = r["latency ARQ neighbour"]["p50"] / r["latency ARQ local"]["p50"]
    ratio99 = r["latency ARQ neighbour"]["p99"] / r["latency ARQ local"]["p99"]
    rows.append(("b. neighbour / local ARQ->ACF p50, p99", f"{ratio50:.2f}, {ratio99:.2f}",
                 "", ""))
    headers = ("measure", "value", "vs echo", "CPU (share of one core)")
    widths = [max(len(str(x[i])) for x in rows + [headers]) for i in range(len(headers))]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for line in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    print()
    for label in ("echo", "LRQ", "ARQ+DRQ neighbour", "ARQ+DRQ local"):
        res = r[label]
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(res["kinds"].items()))
        print(f"  {label:<20} ok {res['ok']} failed {res['failed']} lost {res['lost']}"
              f" unmatched {res['unmatched']} others' CPU {res['others']:.0%} | {kinds}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per saturation phase")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=32, help="requests in flight")
    parser.add_argument("--rate", type=float, default=200.0, help="ARQs/s for the latency")
    parser.add_argument("--latency-seconds", type=float, default=8.0,
                        help="per kind, in 4 alternating slices")
    parser.add_argument("--callers", type=int, default=32)
    args = parser.parse_args()
    started = time.monotonic()
    results = run(args)
    table(results)
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
