"""Benchmark of the status port under RAS load (a script, not a test).

    python bench/status.py [--quick] [--sessions N] [--endpoints N] [--profile DIR]

Prints a table with PASS/FAIL per target:

1. fan-out: RAS throughput at saturation (keepalive RRQs; ARQ+DRQ pairs),
   measured exactly as bench/ras.py measures it, against two identical
   gatekeepers holding M registrations (M = 10,000): "bare" has no status
   session, "watched" has S (100) sessions at trace level 2.  The runs
   alternate between the two in slices, so the machine's noise hits both.
   Reported: both throughputs, the loss in % (target: at most 20 %), the
   same per CPU second of the gatekeeper, and whether every session got every
   event: after each watched slice, each session's RCF (ACF, DCF, CDR) lines
   are compared with the RCFs (ACFs, DCFs) the load generator received.
   The watcher keeps reading after the load stops until no line comes for
   0.5 s: the "lag" is how long event lines kept coming after the last RAS
   answer, and that work counts in the watched gatekeeper's CPU seconds.
   Also: both gatekeepers' RSS after the slices.
2. event latency: first the gatekeeper CPU the moderate mixed load alone
   (keepalives and ARQ+DRQ pairs in turn, MODERATE_RATE operations/s from
   the load generator) costs without and with the S sessions; then, under
   that load, a probe sends one keepalive RRQ every PROBE_INTERVAL (5 ms) for
   one of its own endpoints (aliases ``e9........``) and times, at each of
   the S sessions, the arrival of the RCF line carrying that alias: p50/p99
   over all deliveries, and of the slowest session per event; the probe's
   own RAS round trip alongside.
3. ``r`` with N registrations (N = 100,000, preloaded through RAS into the
   "bare" gatekeeper, the "watched" one stopped first): time from sending
   ``r`` until the final ``;`` of the listing arrives (target 2 s), once
   alone and LISTINGS times under the moderate mixed load plus the probe.
   During each listing: RAS round trips of the load (p99, max; from per
   request timestamps, cut to the listing's window) and the probe's worst
   answer delay, which bounds how long the reactor was blocked at a time
   (target 50 ms); the largest gap between consecutive RAS answers too.

Processes (2 cores): the gatekeeper(s) (``twistd -n gatekeeper`` through
bench/_gkrun.py, status port on 127.0.0.1, MaxStatusClients raised); the
load generator (bench/ras.py's pools, templates, workloads and closed/open
loop, driven by a small dispatcher here); the "watcher", which owns the
status sessions (one epoll loop, non-blocking sockets, one recv of up to
256 KB per ready socket, lines counted with bytes.count), the probe's UDP
socket and the listing client.  Send and arrival times of different
processes are compared directly: time.perf_counter is CLOCK_MONOTONIC,
system-wide, on Linux (checked at start).  A delivery's time is taken after
the recv() that brought it; with S sockets ready at once the watcher's own
reading adds up to a fraction of a millisecond to the later ones.

Every loop is bounded in count and time; the gatekeepers and both helper
processes stop by themselves after a deadline.  ``--profile DIR``: cProfile
(CPU time) in the gatekeepers during the saturation slices, the latency run
and the loaded listings (bench/_gkrun.py), printed after the table;
throughput measured that way is understated (cProfile slows the status
fan-out, many small Python calls, far more than RAS handling).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ras import (GK_NAME, REPLY_TIMEOUT, TTL, WINDOW,  # noqa: E402
                       Calls, Generator, Keepalive, Pool, Register, Server, alias_of,
                       code_state, free_udp_port, ip_of, machine_busy)

MODERATE_RATE = 400            # operations/s of the mixed load (half keepalives, half calls)
PROBE_INTERVAL = 0.005         # s between probe keepalives
PROBE_ENDPOINTS = 500          # the probe's own endpoints (alias reused every 2.5 s)
PROBE_BASE = 900_000_000       # probe aliases e9xxxxxxxx; the load's are e000xxxxxx
RECV_SIZE = 1 << 18

# Targets
FANOUT_LOSS_TARGET = 0.20      # throughput with S sessions at most 20 % below none
LISTING_TARGET = 2.0           # s until the final ';' of r
BLOCK_TARGET = 0.050           # s: longest time RAS may wait behind the listing


def perf() -> float:
    return time.perf_counter()


# ---------------------------------------------------------------------------
# Load generator process: bench/ras.py's pieces behind a small dispatcher
# ---------------------------------------------------------------------------

class Mixed:
    """Keepalives and ARQ+DRQ pairs in turn; records (sent, round trip, kind) per answer."""

    KINDS = ("keepalive RRQ", "ARQ", "DRQ")

    def __init__(self, keepalive: Keepalive, calls: Calls) -> None:
        self.keepalive, self.calls = keepalive, calls
        self.k = 0
        self.timeline: list[tuple[float, float, int]] = []
        self.drq_sent: dict[bytes, float] = {}

    def start(self, now: float):
        self.k += 1
        return (self.calls if self.k & 1 else self.keepalive).start(now)

    def reply(self, state, label, index, data, now):
        if label == "keepalive RRQ":
            self.timeline.append((state[1], now - state[1], 0))
            return self.keepalive.reply(state, label, index, data, now)
        if label == "ARQ":
            self.timeline.append((state[1], now - state[1], 1))
            result = self.calls.reply(state, label, index, data, now)
            if isinstance(result, tuple):          # ACF: the DRQ goes out now
                self.drq_sent[state[3]] = now
            return result
        sent = self.drq_sent.pop(state[3], now)
        self.timeline.append((sent, now - sent, 2))
        return self.calls.reply(state, label, index, data, now)


def generator_main(conn, lifetime: float) -> None:
    """Child process: runs bench/ras.py workloads on the parent's command."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(lifetime))           # dies by itself if the parent is gone
    random.seed(12345)
    gen = Generator()
    pools: dict[str, Pool] = {}
    workloads: dict[tuple, object] = {}    # reused, so round robins carry on
    conn.send(("ready", os.getpid()))
    while conn.poll(lifetime):
        command, args = conn.recv()
        try:
            if command == "stop":
                break
            if command == "pool":
                pools[args["name"]] = Pool(tuple(args["target"]), args["nsock"])
                conn.send(("ok", None))
                continue
            pool = pools[args["pool"]]
            run = dict(duration=args.get("duration", 0.0), window=WINDOW, rate=args.get("rate"),
                       warmup=args.get("warmup", 0.0), max_ops=args.get("max_ops"))
            key = (args["pool"], command, len(pool.ids))
            if command == "register":
                wl = Register(gen, pool, range(args["first"], args["first"] + args["count"]),
                              record=True)
                run.update(duration=args["budget"], max_ops=args["count"])
            elif command == "keepalive":
                if key not in workloads:
                    workloads[key] = Keepalive(gen, pool, pool.registered(), "registrationConfirm")
                wl = workloads[key]
            elif command == "calls":
                if key not in workloads:
                    workloads[key] = Calls(gen, pool, pool.registered())
                wl = workloads[key]
            elif command == "mixed":
                if key not in workloads:
                    workloads[key] = Mixed(
                        Keepalive(gen, pool, pool.registered(), "registrationConfirm"),
                        Calls(gen, pool, pool.registered()))
                wl = workloads[key]
                wl.timeline = []
            else:
                raise ValueError(command)
            result = gen.run(pool, wl, **run)
            result["registered"] = len(pool.ids)
            if command == "mixed":
                result["timeline"] = wl.timeline
            result.pop("op_samples", None)
            if not args.get("samples"):
                result.pop("samples", None)
            conn.send(("ok", result))
        except Exception as error:  # report, keep serving
            import traceback
            conn.send(("error", traceback.format_exc() or repr(error)))


# ---------------------------------------------------------------------------
# Watcher process: status sessions, probe, listing client
# ---------------------------------------------------------------------------

LINES, RCF, ACF, DCF, CDR, BYTES = range(6)


class Session:
    __slots__ = ("sock", "fd", "tail", "counts", "closed", "watch", "listing", "last")

    def __init__(self, sock: socket.socket, watch: bool) -> None:
        self.sock, self.fd = sock, sock.fileno()
        self.tail = b""
        self.counts = [0] * 6
        self.closed = False
        self.watch = watch                 # probe lines are timed on it
        self.listing: dict | None = None
        self.last = 0.0                    # time of the last data


class Watcher:
    def __init__(self, conn) -> None:
        self.conn = conn
        self.poller = select.epoll()
        self.sessions: dict[int, Session] = {}
        self.conn_fd = conn.fileno()
        self.poller.register(self.conn_fd, select.EPOLLIN)
        self.gen = Generator()
        self.messages = self.gen.messages
        self.table = self.messages.reply_table
        self.probe: socket.socket | None = None
        self.probe_eps: list[tuple[int, str, bytes, int]] = []   # (index, epid, base, seq offset)
        self.probe_seq = random.randrange(1, 65536)
        self.probing = False
        self.pending: dict[bytes, tuple[int, float]] = {}  # alias -> (probe number, sent)
        self.arrivals: dict[int, list] = {}           # probe number -> [count, last, sent]
        self.probe_first = 0.0                        # deliveries of probes sent before: warm-up
        self.deliveries: list[float] = []
        self.probe_sent: dict[int, tuple[int, float]] = {}  # seq -> (probe number, sent)
        self.probe_answers: list[tuple[float, float]] = []  # (sent, round trip)
        self.command_waiting = False

    # -- sessions ------------------------------------------------------------

    def connect(self, port: int, count: int, trace: int, watch: bool) -> dict:
        t0 = perf()
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            self._expect(sock, b"\r\n;\r\n")                  # greeting + version block
            sock.sendall(f"trace {trace}\r\n".encode())
            self._expect(sock, f"Output trace level is {trace}\r\n".encode())
            sock.setblocking(False)
            session = Session(sock, watch)
            self.sessions[session.fd] = session
            self.poller.register(session.fd, select.EPOLLIN)
        return {"took": perf() - t0, "sessions": len(self.sessions)}

    @staticmethod
    def _expect(sock: socket.socket, marker: bytes) -> None:
        data = b""
        deadline = perf() + 10
        while marker not in data:
            if perf() > deadline:
                raise RuntimeError(f"status port: no {marker!r} in {data[-200:]!r}")
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"status port closed the session: {data[-200:]!r}")
            data += chunk

    def disconnect(self) -> dict:
        for session in list(self.sessions.values()):
            self._drop(session)
        return {}

    def _drop(self, session: Session) -> None:
        if session.fd in self.sessions:
            del self.sessions[session.fd]
            try:
                self.poller.unregister(session.fd)
            except OSError:
                pass
        session.sock.close()

    def counts(self) -> list[list[int]]:
        return [s.counts[:] + [int(s.closed)] for s in self.sessions.values()]

    # -- the loop ----------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """One epoll wait; reads each ready socket once (the probe's first)."""
        events = self.poller.poll(max(0.0, timeout))
        probe_fd = self.probe.fileno() if self.probe is not None else -1
        if any(fd == probe_fd for fd, _ in events):
            self._probe_answers()
        for fd, _ in events:
            if fd == probe_fd:
                continue
            if fd == self.conn_fd:
                self.command_waiting = True
                continue
            session = self.sessions.get(fd)
            if session is not None:
                self._read(session)

    def _read(self, s: Session) -> None:
        try:
            data = s.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        now = perf()
        if not data:
            s.closed = True
            try:
                self.poller.unregister(s.fd)
            except OSError:
                pass
            return
        s.last = now
        if s.tail:
            data = s.tail + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            s.tail = data
            return
        if cut < len(data):
            s.tail, whole = data[cut:], data[:cut]
        else:
            s.tail, whole = b"", data
        c = s.counts
        c[LINES] += whole.count(b"\n")
        c[RCF] += whole.count(b"RCF|")
        c[ACF] += whole.count(b"ACF|")
        c[DCF] += whole.count(b"DCF|")
        c[CDR] += whole.count(b"CDR|")
        c[BYTES] += len(whole)
        if self.probing and s.watch:
            pending, arrivals, deliveries = self.pending, self.arrivals, self.deliveries
            pos = whole.find(b"|e9")
            while pos >= 0:
                entry = pending.get(whole[pos + 1:pos + 11])
                if entry is not None:
                    k, sent = entry
                    if sent >= self.probe_first:
                        deliveries.append(now - sent)
                    arrival = arrivals[k]
                    arrival[0] += 1
                    arrival[1] = now
                pos = whole.find(b"|e9", pos + 11)
        if s.listing is not None:
            self._listing_data(s, whole, now)

    def idle(self, lifetime: float) -> None:
        deadline = perf() + lifetime
        gc.disable()
        while perf() < deadline:
            self.pump(0.2)
            if self.command_waiting:
                self.command_waiting = False
                if not self.conn.poll(0):
                    continue
                command, args = self.conn.recv()
                if command == "stop":
                    return
                try:
                    result = getattr(self, command)(**args)
                    self.conn.send(("ok", result))
                except Exception:
                    import traceback
                    self.conn.send(("error", traceback.format_exc()))

    def settle(self, quiet: float, budget: float) -> dict:
        """Read until no session gets anything for ``quiet`` s; the lag is when the last came."""
        t0 = perf()
        last = max([s.last for s in self.sessions.values()] + [t0])
        while perf() - t0 < budget:
            self.pump(0.05)
            last = max([s.last for s in self.sessions.values()] + [last])
            if perf() - max(last, t0) >= quiet:
                break
        return {"lag": max(0.0, last - t0), "counts": self.counts()}

    # -- probe -------------------------------------------------------------

    def probe_setup(self, ras_port: int, count: int) -> dict:
        """Registers the probe's endpoints (one UDP socket, one RRQ at a time)."""
        if self.probe is not None:
            self.poller.unregister(self.probe.fileno())
            self.probe.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.connect(("127.0.0.1", ras_port))
        sock.settimeout(REPLY_TIMEOUT)
        port = sock.getsockname()[1]
        rrq = self.messages.rrq()
        rcf = self.messages.index("registrationConfirm")
        self.probe_eps = []
        t0 = perf()
        for j in range(count):
            i = PROBE_BASE + j
            buf = rrq.patch({"rasport": port, "sigip": ip_of(i), "alias": alias_of(i)})
            seq = self._next_seq()
            buf[rrq.seq_offset], buf[rrq.seq_offset + 1] = (seq - 1) >> 8, (seq - 1) & 0xFF
            for _ in range(3):
                sock.send(buf)
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    continue
                if (data[0] >> 2) & 0x1F == rcf:
                    break
            else:
                raise RuntimeError(f"probe endpoint {j}: no RCF")
            epid = self.gen.endpoint_id_from(data, j < 5)
            template = self.messages.keepalive(len(epid))
            base = bytes(template.patch({"rasport": port, "sigip": ip_of(i),
                                         "alias": alias_of(i), "epid": epid}))
            self.probe_eps.append((i, epid, base, template.seq_offset))
            if j % 20 == 0:
                self.pump(0)               # keep the sessions read
        sock.setblocking(False)
        self.probe = sock
        self.poller.register(sock.fileno(), select.EPOLLIN)
        return {"took": perf() - t0}

    def _next_seq(self) -> int:
        self.probe_seq = self.probe_seq % 65535 + 1
        return self.probe_seq

    def _probe_answers(self) -> None:
        table, sent = self.table, self.probe_sent
        while True:
            try:
                data = self.probe.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                return
            now = perf()
            entry = table[(data[0] >> 2) & 0x1F] if data and not data[0] & 0x80 else None
            if entry is None:
                continue
            off = entry[1]
            item = sent.pop(((data[off] << 8) | data[off + 1]) + 1, None)
            if item is not None:
                self.probe_answers.append((item[1], now - item[1]))

    def _probe_send(self, k: int, now: float) -> None:
        i, epid, base, off = self.probe_eps[k % len(self.probe_eps)]
        buf = bytearray(base)
        seq = self._next_seq()
        buf[off], buf[off + 1] = (seq - 1) >> 8, (seq - 1) & 0xFF
        self.pending[alias_of(i).encode()] = (k, now)
        self.arrivals[k] = [0, 0.0, now]        # sessions reached, last arrival, sent
        self.probe_sent[seq] = (k, now)
        try:
            self.probe.send(buf)
        except OSError:
            pass

    def probe_run(self, duration: float, warmup: float = 0.0, listing: bool = False,
                  lead: float = 0.5, tail: float = 0.5, budget: float = 60.0) -> dict:
        """Probe keepalives every PROBE_INTERVAL for ``duration`` s (after ``warmup``),
        or, with ``listing``, from ``lead`` s before an ``r`` until ``tail`` s after its ';'."""
        self.pending.clear()
        self.arrivals.clear()
        self.deliveries = []
        self.probe_sent.clear()
        self.probe_answers = []
        watching = sum(1 for s in self.sessions.values() if s.watch and not s.closed)
        lister = next((s for s in self.sessions.values() if not s.watch), None)
        state = None
        self.probing = True
        t0 = perf()
        self.probe_first = t0 + warmup
        hard_end = t0 + budget
        k = 0
        try:
            while True:
                now = perf()
                if listing:
                    if state is None and now >= t0 + lead:
                        state = self._listing_start(lister)
                    if state is not None and state["end"] is not None \
                            and now >= state["end"] + tail:
                        break
                    if now >= hard_end:
                        break
                elif now >= t0 + warmup + duration:
                    break
                while t0 + k * PROBE_INTERVAL <= now:
                    self._probe_send(k, perf())
                    k += 1
                self.pump(t0 + k * PROBE_INTERVAL - perf())
            t_stop = perf()
            # drain: answers and event lines of the last probes
            while perf() < t_stop + REPLY_TIMEOUT and (
                    self.probe_sent or any(a[0] < watching for a in self.arrivals.values())):
                self.pump(0.01)
        finally:
            self.probing = False
            if lister is not None:
                lister.listing = None
        self.pending.clear()
        lost = len(self.probe_sent)
        self.probe_sent.clear()
        first = t0 + warmup
        return {"t0": t0, "t_stop": t_stop, "sent": k, "watching": watching,
                "answers": [(s, r) for s, r in self.probe_answers if s >= first],
                "lost": lost, "deliveries": self.deliveries,
                "arrivals": [a for a in self.arrivals.values() if a[2] >= first],
                "listing": state}

    # -- listing -------------------------------------------------------------

    def _listing_start(self, s: Session) -> dict:
        state = {"sent": perf(), "first": None, "number_at": None, "end": None,
                 "rcf": 0, "bytes": 0, "number": None}
        s.listing = state
        s.sock.send(b"r\r\n")
        return state

    @staticmethod
    def _listing_data(s: Session, whole: bytes, now: float) -> None:
        st = s.listing
        if st["end"] is not None:
            return
        if st["first"] is None:
            st["first"] = now
        st["bytes"] += len(whole)
        if st["number"] is None:
            idx = whole.find(b"Number of Endpoints: ")
            if idx < 0:
                st["rcf"] += whole.count(b"RCF|")
                return
            st["rcf"] += whole.count(b"RCF|", 0, idx)
            eol = whole.find(b"\r\n", idx)
            st["number"] = int(whole[idx + 21:eol])
            st["number_at"] = now
            rest = whole[eol:]
            if rest.startswith(b"\r\n;\r\n"):
                st["end"] = now
        elif whole.startswith(b";\r\n"):
            st["end"] = now


def watcher_main(conn, lifetime: float) -> None:
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(lifetime))
    random.seed(54321)
    watcher = Watcher(conn)
    conn.send(("ready", os.getpid()))
    watcher.idle(lifetime)


# ---------------------------------------------------------------------------
# Gatekeepers
# ---------------------------------------------------------------------------

def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gatekeeper(workdir: Path, lifetime: float, profile_dir: Path | None,
                     max_clients: int) -> Server:
    """bench/ras.py's gatekeeper, plus a status port and MaxStatusClients."""
    port, status_port = free_udp_port(), free_tcp_port()
    ini = workdir / "gatekeeper.ini"
    ini.write_text(f"[Gatekeeper::Main]\nMaxStatusClients={max_clients}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["BENCH_LIFETIME"] = str(lifetime)
    if profile_dir is not None:
        env["BENCH_PROFILE_DIR"] = str(profile_dir)
    log = workdir / "twistd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=", "gatekeeper",
             "--config", str(ini), "--name", GK_NAME, "--interface", "127.0.0.1",
             "--ras-port", str(port), "--discovery-port", "0", "--ttl", str(TTL),
             "--status-port", str(status_port)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "serving RAS" in text:
            server = Server(process, port, log)
            server.status_port = status_port
            return server
        if process.poll() is not None:
            raise RuntimeError(f"gatekeeper exited {process.returncode}:\n{text}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("gatekeeper not ready after 60 s")


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def ms(v: float) -> str:
    return f"{v * 1e3:.2f}"


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

class Child:
    """A helper process and its pipe."""

    def __init__(self, ctx, target, lifetime: float, name: str) -> None:
        self.name = name
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child_conn, lifetime), daemon=True)
        self.process.start()
        if not self.conn.poll(120):
            raise RuntimeError(f"{name} did not start")
        self.pid = self.conn.recv()[1]

    def send(self, command: str, **args) -> None:
        self.conn.send((command, args))

    def result(self, budget: float):
        if not self.conn.poll(budget):
            raise RuntimeError(f"{self.name} did not answer in {budget:.0f} s")
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name} failed:\n{result}")
        return result

    def call(self, command: str, **args):
        self.send(command, **args)
        return self.result(args.get("budget", args.get("duration", 0) + args.get("warmup", 0))
                           + 120)

    def stop(self) -> None:
        try:
            if self.process.is_alive():
                self.conn.send(("stop", {}))
                self.process.join(10)
        except OSError:
            pass
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


class Bench:
    def __init__(self, args) -> None:
        self.quick = args.quick
        self.n = args.endpoints or (5_000 if self.quick else 100_000)
        self.m = min(self.n, 2_000 if self.quick else 10_000)     # endpoints for 1. and 2.
        self.sessions = args.sessions or (20 if self.quick else 100)
        self.nsock = 32 if self.quick else 128
        self.slices = 2 if self.quick else 4
        self.sat = 1.5 if self.quick else 4.0          # per slice
        self.warmup = 0.5 if self.quick else 1.0
        self.lat = 3.0 if self.quick else 10.0
        self.listings = 1 if self.quick else 3
        self.lifetime = 300 if self.quick else 1200
        self.profile_dir = Path(args.profile).resolve() if args.profile else None
        self.keep_logs = args.keep_logs
        self.phases = {int(p) for p in args.phases.split(",") if p.strip()}
        self.notes: list[str] = []
        self.rows: list[tuple] = []
        self.failed = False
        self.info: list[str] = []

    # -- plumbing -----------------------------------------------------------

    def profile(self, server: Server, name: str | None) -> None:
        """Starts (name) or stops (None) cProfile in a gatekeeper, if --profile."""
        if self.profile_dir is None:
            return
        if name is not None:
            (self.profile_dir / "next").write_text(name)
            os.kill(server.pid, signal.SIGRTMIN + 3)
            return
        before = set(self.profile_dir.glob("*.prof"))
        os.kill(server.pid, signal.SIGRTMIN + 4)
        deadline = time.monotonic() + 60
        while set(self.profile_dir.glob("*.prof")) == before and time.monotonic() < deadline:
            time.sleep(0.1)

    def measured(self, server: Server, run) -> tuple[dict, dict]:
        """Runs ``run()``; returns its result and the CPU shares (of one core) meanwhile."""
        pids = {"gk": server.pid, "gen": self.gen.pid, "watcher": self.watcher.pid}
        cpu0 = {k: cpu_of(p) for k, p in pids.items()}
        busy0, t0 = machine_busy(), perf()
        result = run()
        wall = perf() - t0
        cpu = {k: (cpu_of(p) - cpu0[k]) / wall for k, p in pids.items()}
        cpu["others"] = max(0.0, (machine_busy() - busy0) / wall - sum(cpu.values()))
        cpu["gk_s"] = cpu["gk"] * wall
        return result, cpu

    @staticmethod
    def cpu_text(cpu: dict) -> str:
        return " ".join(f"{k} {cpu[k]:.0%}" for k in ("gk", "gen", "watcher", "others"))

    def row(self, name, value, detail="", target="", ok=None) -> None:
        self.failed |= ok is False
        self.rows.append((name, value, detail, target,
                          "" if ok is None else ("PASS" if ok else "FAIL")))

    # -- phases -------------------------------------------------------------

    def saturation(self, server: Server, pool: str, kind: str, watched: bool) -> dict:
        if watched:
            before = self.watcher.call("counts")
        gk0 = server.cpu()
        self.profile(server, f"{'watched' if watched else 'bare'} {kind}")
        result, cpu = self.measured(server, lambda: self.gen.call(
            kind, pool=pool, duration=self.sat, warmup=self.warmup))
        result["cpu"] = cpu
        result["gk_total_s"] = server.cpu() - gk0
        if watched:
            # the event lines still owed when the load stops are this run's work too
            settled = self.watcher.call("settle", quiet=0.5, budget=60)
            result["gk_total_s"] = server.cpu() - gk0
        self.profile(server, None)
        if watched:
            result["lag"] = settled["lag"]
            result["delta"] = [[a - b for a, b in zip(after, prior)]
                               for after, prior in zip(settled["counts"], before)]
            result["closed"] = sum(c[6] for c in settled["counts"])
        return result

    def run(self) -> int:
        started = perf()
        if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            self.notes.append("perf_counter is not CLOCK_MONOTONIC: cross-process times are"
                              " not comparable, latencies of 2. and 3. are meaningless")
        workdir = Path(tempfile.mkdtemp(prefix="bench-status-"))
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("spawn")
        self.gen = self.watcher = None
        bare = watched = None
        servers = []
        try:
            self.gen = Child(ctx, generator_main, self.lifetime, "load generator")
            self.watcher = Child(ctx, watcher_main, self.lifetime, "watcher")
            print(f"code: {code_state()}", flush=True)
            print(f"status benchmark: {self.m:,} endpoints and {self.sessions} sessions for 1./2.,"
                  f" {self.n:,} endpoints for 3.; saturation slices {self.slices} x {self.sat:g} s"
                  f" per gatekeeper and kind (window {WINDOW}); moderate load {MODERATE_RATE}"
                  f" ops/s + probe every {PROBE_INTERVAL * 1e3:g} ms", flush=True)
            for name in ("bare", "watched"):
                (workdir / name).mkdir()
            bare = start_gatekeeper(workdir / "bare", self.lifetime, self.profile_dir,
                                    self.sessions + 10)
            servers.append(bare)
            watched = start_gatekeeper(workdir / "watched", self.lifetime, self.profile_dir,
                                       self.sessions + 10)
            servers.append(watched)
            print(f"gatekeepers: bare pid {bare.pid}, watched pid {watched.pid};"
                  f" generator pid {self.gen.pid}, watcher pid {self.watcher.pid}", flush=True)
            for name, server in (("bare", bare), ("watched", watched)):
                self.gen.call("pool", name=name, target=("127.0.0.1", server.port),
                              nsock=self.nsock)
                t0 = perf()
                r = self.gen.call("register", budget=300, pool=name, first=0, count=self.m)
                if r["registered"] != self.m:
                    raise RuntimeError(f"{name}: only {r['registered']} of {self.m} registered")
                k = self.gen.call("keepalive", budget=300, pool=name, duration=300,
                                  max_ops=self.m)
                print(f"  {name}: {self.m:,} registered and one keepalive each in"
                      f" {perf() - t0:.1f} s (lost {r['lost'] + k['lost']})", flush=True)
            c = self.watcher.call("connect", port=watched.status_port, count=self.sessions,
                                  trace=2, watch=True)
            print(f"  {c['sessions']} status sessions at trace 2 on watched"
                  f" ({c['took']:.2f} s)", flush=True)
            if 1 in self.phases:
                self.fanout(bare, watched)
                self.row("1. gatekeeper RSS after the slices, bare / watched",
                         f"{bare.rss_mb():.0f} / {watched.rss_mb():.0f} MB",
                         f"{self.m:,} endpoints each; watched also buffered the lines it owed")
            if 2 in self.phases:
                self.latency(bare, watched)
            self.watcher.call("disconnect")
            self.check_log(watched, "watched")
            watched.stop()
            servers.remove(watched)
            if 3 in self.phases:
                self.listing(bare)
            self.check_log(bare, "bare/big")
        finally:
            for child in (self.gen, self.watcher):
                if child is not None:
                    child.stop()
            for server in servers:
                server.stop()
            if self.keep_logs:
                print(f"gatekeeper logs kept in {workdir}", flush=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        self.table(perf() - started)
        if self.profile_dir is not None:
            self.print_profiles()
        return 1 if self.failed else 0

    def check_log(self, server: Server, name: str) -> None:
        log = server.log.read_text(errors="replace")
        problems = [line for line in log.splitlines()
                    if "Traceback" in line or "failed" in line or "dropped" in line
                    or "not reading" in line]
        if problems:
            self.notes.append(f"{name} gatekeeper log: {len(problems)} problem lines, e.g."
                              f" {problems[0][:200]}")

    # 1. ------------------------------------------------------------------

    def fanout(self, bare: Server, watched: Server) -> None:
        print("1. fan-out: saturation slices, bare / watched", flush=True)
        runs: dict[tuple[str, bool], list[dict]] = {}
        for i in range(self.slices):
            for kind in ("keepalive", "calls"):
                order = [(bare, "bare", False), (watched, "watched", True)]
                if i % 2:
                    order.reverse()
                for server, pool, is_watched in order:
                    r = self.saturation(server, pool, kind, is_watched)
                    runs.setdefault((kind, is_watched), []).append(r)
                    extra = ""
                    if is_watched:
                        extra = f" lag {r['lag']:.2f} s"
                    print(f"  slice {i + 1} {kind:<9} {pool:<7} {r['rate']:>7.0f}/s ok {r['ok']}"
                          f" lost {r['lost']} rej {r['rejected']} | {self.cpu_text(r['cpu'])}"
                          f"{extra}", flush=True)
        self.fanout_runs = runs
        for kind, label, unit in (("keepalive", "keepalive RRQ/s", "RRQ"),
                                  ("calls", "ARQ+DRQ pairs/s", "pairs")):
            res = {}
            for is_watched in (False, True):
                rs = runs[(kind, is_watched)]
                rate = sum(r["rate"] for r in rs) / len(rs)
                per_cpu = sum(r["ok"] for r in rs) / sum(r["gk_total_s"] for r in rs)
                gk = sum(r["cpu"]["gk"] for r in rs) / len(rs)
                watcher = sum(r["cpu"]["watcher"] for r in rs) / len(rs)
                others = sum(r["cpu"]["others"] for r in rs) / len(rs)
                res[is_watched] = (rate, per_cpu)
                spread = f"{min(r['rate'] for r in rs):,.0f}-{max(r['rate'] for r in rs):,.0f}"
                self.row(f"1. {label}, {self.sessions if is_watched else 0} sessions",
                         f"{rate:,.0f}",
                         f"slices {spread}; per gk CPU-s {per_cpu:,.0f}; cpu gk {gk:.0%}"
                         f" watcher {watcher:.0%} others {others:.0%}")
            loss = 1 - res[True][0] / res[False][0]
            loss_cpu = 1 - res[True][1] / res[False][1]
            self.row(f"1. {kind} throughput lost to {self.sessions} sessions", f"{loss:.1%}",
                     f"per gk CPU-s: {loss_cpu:.1%}", f"<= {FANOUT_LOSS_TARGET:.0%}",
                     loss <= FANOUT_LOSS_TARGET)
        # every event at every session?
        for kind, checks in (("keepalive", (("RCF", RCF, "registrationConfirm"),)),
                             ("calls", (("ACF", ACF, "admissionConfirm"),
                                        ("DCF", DCF, "disengageConfirm"),
                                        ("CDR", CDR, "disengageConfirm")))):
            rs = runs[(kind, True)]
            for name, column, answer in checks:
                expected = [r["kinds"].get(answer, 0) for r in rs]
                got = [[d[column] for d in r["delta"]] for r in rs]
                complete = sum(all(g == e for g, e in zip(col, expected))
                               for col in zip(*got))
                lows = [min(g) - e for g, e in zip(got, expected)]
                highs = [max(g) - e for g, e in zip(got, expected)]
                closed = max(r["closed"] for r in rs)
                ok = complete == self.sessions and closed == 0
                self.row(f"1. {name} lines per session = {name}s answered ({kind})",
                         f"{complete}/{self.sessions} sessions",
                         f"{sum(expected):,} answered; per session diff min {min(lows):+d}"
                         f" max {max(highs):+d}; sessions closed {closed}",
                         "all sessions, all", ok)
        lag = max(r["lag"] for k, rs in runs.items() if k[1] for r in rs)
        self.row("1. status output lag after the load stopped (max)", f"{lag:.2f} s",
                 "the last event line came this long after the generator's last answer")

    # 2. ------------------------------------------------------------------

    def latency(self, bare: Server, watched: Server) -> None:
        print("2. event latency at moderate load", flush=True)
        # what the moderate load alone costs the gatekeeper, without and with sessions
        share = {}
        for name, server in (("bare", bare), ("watched", watched)):
            r, cpu = self.measured(server, lambda: self.gen.call(
                "mixed", pool=name, duration=self.lat / 2, rate=MODERATE_RATE))
            share[name] = cpu["gk"]
            print(f"  {name}: {MODERATE_RATE} ops/s alone, ok {r['ok']} lost {r['lost']}"
                  f" | {self.cpu_text(cpu)}", flush=True)
        if self.profile_dir is None:
            self.row(f"2. gatekeeper CPU at {MODERATE_RATE} ops/s, 0 / {self.sessions} sessions",
                     f"{share['bare']:.0%} / {share['watched']:.0%}",
                     "of one core; the same mixed load (no probe)")
        s = self.watcher.call("probe_setup", ras_port=watched.port, count=PROBE_ENDPOINTS)
        print(f"  probe: {PROBE_ENDPOINTS} endpoints registered in {s['took']:.2f} s", flush=True)
        warm = 0.5

        def both():
            self.gen.send("mixed", pool="watched", duration=self.lat + 2 * warm,
                          rate=MODERATE_RATE)
            self.watcher.send("probe_run", duration=self.lat, warmup=warm)
            p = self.watcher.result(self.lat + 120)
            g = self.gen.result(self.lat + 120)
            return p, g

        self.profile(watched, "watched moderate")
        (probe, load), cpu = self.measured(watched, both)
        self.profile(watched, None)
        deliveries = probe["deliveries"]
        # the slowest session per probe keepalive (probes every session got)
        watching = probe["watching"]
        slowest, partial = [], 0
        for count, last, sent in probe["arrivals"]:
            if count == watching:
                slowest.append(last - sent)
            else:
                partial += 1
        rtt = [r for _, r in probe["answers"]]
        print(f"  probe sent {probe['sent']}, answered {len(rtt)} (warm), lost {probe['lost']};"
              f" deliveries {len(deliveries)}, incomplete {partial}; load ok {load['ok']}"
              f" lost {load['lost']} | {self.cpu_text(cpu)}", flush=True)
        self.row(f"2. event line latency, all deliveries ({watching} sessions)",
                 f"p50 {ms(pct(deliveries, .5))} ms",
                 f"p99 {ms(pct(deliveries, .99))} ms, max {ms(max(deliveries, default=float('nan')))} ms;"
                 f" {len(deliveries):,} deliveries", "(info)")
        self.row("2. event line latency, slowest session per event",
                 f"p50 {ms(pct(slowest, .5))} ms",
                 f"p99 {ms(pct(slowest, .99))} ms; {partial} of {len(probe['arrivals'])} events"
                 f" not at every session", "(info)")
        self.row("2. probe RAS round trip (same keepalives)", f"p50 {ms(pct(rtt, .5))} ms",
                 f"p99 {ms(pct(rtt, .99))} ms; load {MODERATE_RATE} ops/s + probe"
                 f" {1 / PROBE_INTERVAL:.0f}/s; cpu gk {cpu['gk']:.0%} watcher"
                 f" {cpu['watcher']:.0%}")
        if partial:
            self.notes.append(f"2.: {partial} probe events did not reach every session")

    # 3. ------------------------------------------------------------------

    def listing(self, big: Server) -> None:
        print(f"3. r with {self.n:,} registrations", flush=True)
        t0 = perf()
        r = self.gen.call("register", budget=900, pool="bare", first=self.m,
                          count=self.n - self.m)
        print(f"  preload to {r['registered']:,} endpoints in {perf() - t0:.1f} s"
              f" (lost {r['lost']}); gatekeeper RSS {big.rss_mb():.0f} MB", flush=True)
        if r["registered"] != self.n:
            self.notes.append(f"3.: only {r['registered']} of {self.n} registered")
        self.watcher.call("connect", port=big.status_port, count=1, trace=0, watch=False)
        self.watcher.call("probe_setup", ras_port=big.port, count=50)
        total = self.n + 50

        # alone (probe only)
        probe, cpu = self.measured(big, lambda: self.watcher.call(
            "probe_run", duration=0, listing=True, budget=120))
        alone = self.listing_figures(probe, None)
        print(f"  alone: r {alone['time']:.2f} s, first byte {alone['first']*1e3:.1f} ms,"
              f" {alone['rcf']:,} lines, probe max {ms(alone['probe_max'])} ms"
              f" | {self.cpu_text(cpu)}", flush=True)
        loaded = []
        for i in range(self.listings):
            duration = 2 * alone["time"] + 2.0

            def both():
                self.gen.send("mixed", pool="bare", duration=duration, rate=MODERATE_RATE)
                self.watcher.send("probe_run", duration=0, listing=True, lead=0.7,
                                  budget=duration + 30)
                p = self.watcher.result(duration + 120)
                g = self.gen.result(duration + 120)
                return p, g

            self.profile(big, "listing")
            (probe, load), cpu = self.measured(big, both)
            self.profile(big, None)
            fig = self.listing_figures(probe, load)
            loaded.append(fig)
            print(f"  loaded {i + 1}: r {fig['time']:.2f} s, first byte {fig['first']*1e3:.1f} ms,"
                  f" {fig['rcf']:,} lines; RAS during it: {fig['ras_n']} answers p99"
                  f" {ms(fig['ras_p99'])} max {ms(fig['ras_max'])} ms; probe max"
                  f" {ms(fig['probe_max'])} ms; largest answer gap {ms(fig['gap'])} ms;"
                  f" load lost {load['lost']}{' (listing outlasted the load)' if fig['short'] else ''}"
                  f" | {self.cpu_text(cpu)}", flush=True)
        worst = max(loaded, key=lambda f: f["time"])
        lines_ok = all(f["rcf"] == total and f["number"] == total for f in [alone] + loaded)
        self.row(f"3. r @{total:,}: time to final ';', alone", f"{alone['time']:.2f} s",
                 f"first byte {alone['first'] * 1e3:.0f} ms; {alone['mb']:.1f} MB",
                 f"<= {LISTING_TARGET:g} s", alone["time"] <= LISTING_TARGET)
        self.row(f"3. r @{total:,}: time to final ';', under load (worst of {len(loaded)})",
                 f"{worst['time']:.2f} s",
                 "all: " + ", ".join(f"{f['time']:.2f}" for f in loaded),
                 f"<= {LISTING_TARGET:g} s", worst["time"] <= LISTING_TARGET)
        self.row("3. r listing complete (RCF lines, Number of Endpoints)",
                 "yes" if lines_ok else "NO",
                 ", ".join(f"{f['rcf']:,}/{f['number']}" for f in [alone] + loaded),
                 f"= {total:,}", lines_ok)
        ras_all = [x for f in loaded for x in f["ras"]]
        self.row("3. RAS round trip during r (mixed load)", f"p99 {ms(pct(ras_all, .99))} ms",
                 f"max {ms(max(ras_all) if ras_all else float('nan'))} ms, p50"
                 f" {ms(pct(ras_all, .5))} ms; {len(ras_all):,} answers", "(info)")
        probe_max = max(f["probe_max"] for f in loaded)
        self.row("3. reactor block during r: probe's worst answer delay",
                 f"{ms(probe_max)} ms",
                 f"probe p99 {ms(max(f['probe_p99'] for f in loaded))} ms; largest gap between"
                 f" RAS answers {ms(max(f['gap'] for f in loaded))} ms; probe lost"
                 f" {sum(f['probe_lost'] for f in loaded)}",
                 f"<= {BLOCK_TARGET * 1e3:.0f} ms", probe_max <= BLOCK_TARGET)
        if any(f["short"] for f in loaded):
            self.notes.append("3.: a listing outlasted the concurrent load; RAS figures cover"
                              " only part of it (the probe covers all of it)")

    @staticmethod
    def listing_figures(probe: dict, load: dict | None) -> dict:
        st = probe["listing"]
        if st is None or st["end"] is None:
            raise RuntimeError(f"r listing did not finish: {st}")
        start, end = st["sent"], st["end"]
        answers = [(s, r) for s, r in probe["answers"] if start <= s <= end]
        probe_rtt = [r for _, r in answers]
        # requests of the probe sent before the listing but answered during it count too
        probe_rtt += [r for s, r in probe["answers"] if s < start < s + r]
        fig = {"time": end - start, "first": (st["first"] or end) - start, "rcf": st["rcf"],
               "number": st["number"], "mb": st["bytes"] / 1e6,
               "probe_max": max(probe_rtt) if probe_rtt else float("nan"),
               "probe_p99": pct(probe_rtt, .99), "probe_lost": probe["lost"], "ras": [],
               "ras_n": 0, "ras_p99": float("nan"), "ras_max": float("nan"), "short": False}
        arrivals = sorted(s + r for s, r in probe["answers"])
        if load is not None:
            tl = load["timeline"]
            ras = [r for s, r, _ in tl if start <= s <= end or s < start < s + r]
            fig.update(ras=ras, ras_n=len(ras), ras_p99=pct(ras, .99),
                       ras_max=max(ras) if ras else float("nan"),
                       short=max((s for s, _, _ in tl), default=0) < end)
            arrivals = sorted(arrivals + [s + r for s, r, _ in tl])
        inside = [a for a in arrivals if start <= a <= end]
        gaps = [b - a for a, b in zip(inside, inside[1:])]
        fig["gap"] = max(gaps) if gaps else float("nan")
        return fig

    # -- report -------------------------------------------------------------

    def table(self, elapsed: float) -> None:
        headers = ("measure", "value", "detail", "target", "result")
        widths = [max(len(str(x[i])) for x in self.rows + [headers]) for i in range(5)]
        print()
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        print("  ".join("-" * w for w in widths))
        for line in self.rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
        print()
        print(f"1.: {self.slices} alternating slices of {self.sat:g} s (+{self.warmup:g} s warm-up)"
              f" per gatekeeper and kind at saturation ({WINDOW} in flight, {self.nsock} sockets,"
              f" {self.m:,} endpoints round robin); value = mean of the slices. 'per gk CPU-s':"
              " answers per CPU second of the gatekeeper. cpu = share of one core during the"
              " runs. 2.: probe keepalive every"
              f" {PROBE_INTERVAL * 1e3:g} ms under {MODERATE_RATE} ops/s (keepalives and"
              " ARQ+DRQ pairs in turn); latency = send to arrival of the RCF line at a session."
              f" 3.: {self.n:,} load + 50 probe endpoints; listing client at trace 0; the probe's"
              " worst answer delay bounds the longest reactor block.")
        for note in self.notes:
            print("NOTE:", note)
        print(f"total time {elapsed:.0f} s; {'FAIL' if self.failed else 'PASS'}")

    def print_profiles(self) -> None:
        import json
        import pstats

        print("\nGarbage collector while profiled (generation: passes, total s, longest s):")
        for path in sorted(self.profile_dir.glob("*.gc.json")):
            info = json.loads(path.read_text())
            text = "; ".join(f"gen{g}: {v['count']}, {v['seconds']:.3f}, {v['max']:.3f}"
                             for g, v in info["collections"].items())
            print(f"  {path.name[:-8]:<24} {text}")
        for path in sorted(self.profile_dir.glob("*.prof")):
            stats = pstats.Stats(str(path))
            total = sum(v[2] for v in stats.stats.values())
            by_file: dict[str, float] = {}
            for (filename, _, _), v in stats.stats.items():
                short = "/".join(Path(filename).parts[-2:])
                by_file[short] = by_file.get(short, 0.0) + v[2]
            print(f"\n=== gatekeeper profile (CPU time): {path.stem}: {total:.2f} s;"
                  " own time by file, top 12 ===")
            for name, t in sorted(by_file.items(), key=lambda x: -x[1])[:12]:
                print(f"  {t:7.3f} s {t / total:6.1%}  {name}")
            print(f"--- top 20 functions by own time ({path.stem}) ---")
            stats.sort_stats("tottime").print_stats(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--sessions", type=int, default=0, help="status sessions for 1. and 2.")
    parser.add_argument("--endpoints", type=int, default=0, help="registrations for 3.")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile the gatekeepers during saturation slices and listings")
    parser.add_argument("--phases", default="1,2,3",
                        help="which parts to run: 1 fan-out, 2 latency, 3 listing (default all)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the gatekeepers' logs (the work directory is printed)")
    return Bench(parser.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
