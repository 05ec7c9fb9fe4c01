"""Load benchmark of the gatekeeper's RAS service over loopback (a script, not a test).

    python bench/ras.py [--quick] [--endpoints N] [--profile DIR]

Runs, in one go, and prints a table with PASS/FAIL per target:

1. baseline: a bare Twisted UDP echo server (own process) driven by the same
   load generator: echoes/s and p50/p99 latency;
2. the real ``twistd -n gatekeeper`` (own process, ``--ttl 3600``), after a
   preload of N registrations through RAS (N = 100,000, timed) and one
   keepalive per endpoint (the gatekeeper builds an endpoint's keepalive RCF
   at its first keepalive; that pass is timed too, the rest is steady state):
   a. full RRQ (fresh alias, fresh callSignalAddress) with N registered;
   b. keepalive RRQ (the full RRQ with keepAlive and endpointIdentifier, as
      ooh323c sends it), round robin over all N endpoints;
   c. ARQ + DRQ pairs: a registered caller asks to call another registered
      endpoint's alias, then disengages;
   d. keepalive RRQ p50/p99 and ARQ p50 at 100 and at N endpoints, and their
      ratio: a second gatekeeper process holds the 100, and the latency runs
      alternate between the two in slices, so the machine's noise hits both;
   e. the gatekeeper's VmRSS with N endpoints registered (after the keepalive
      pass).

Throughput is measured at saturation: a closed loop keeping WINDOW (64)
operations in flight across all sockets, one warm-up second discarded;
an operation is one request/answer (one pair for ARQ+DRQ) and only answers of
the expected kind (RCF, ACF then DCF) count, rejects and losses are reported
apart.  Latency is measured at a moderate load: an open loop paced at
LATENCY_RATE (500) operations/s, the same for the echo server and for the
gatekeeper at 100 and at N endpoints.

The load generator is one separate process (2 cores: one for the server,
one for the load).  It owns a pool of UDP sockets on 127.0.0.1, connected
to the server; endpoint i registers from socket i mod SOCKETS, so its
keepalives, ARQs and DRQs come from the address that registered it.  Each
endpoint has a distinct h323-ID alias (``e%09d``) and a distinct
callSignalAddress (10.x.y.z:1720).  Requests are not encoded under load: each
kind is encoded once as a template (with ``gatekeeper.testing.FakeEndpoint``)
and the byte offsets of its variable fields (requestSeqNum, alias, IP, port,
endpointIdentifier, call identifier GUID) are found by encoding twice with
different values; every template is checked against a real encoding before
use.  Answers are classified from their first byte (the RasMessage CHOICE
index) and matched to requests by socket and requestSeqNum, which is unique
per socket (so the gatekeeper's retransmission cache never answers them).
Endpoint identifiers are taken from RCFs (checked against a full decode for a
sample).  Every loop is bounded in operations and in time; the servers also
stop by themselves after a deadline.

The machine is shared and noisy: each phase also reports the CPU used by the
server, by the generator and by everything else, and "per CPU-s" (answers
per CPU second of the server), which shows what the server could do with a
whole core; a NOTE says when a server had less than 90% of a core at
saturation.  The echo figure is co-limited by the Python load generator
(near a full core itself), so it is a lower bound of the echo server's.

``--profile DIR`` runs the big gatekeeper with cProfile (CPU time) switched on
only during the saturation phases (bench/_gkrun.py), and prints the top
functions and the garbage collector's passes of each; throughput measured
that way is slowed down by the profiler.
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GK_NAME = "GK"
TTL = 3600
WINDOW = 64                    # operations in flight at saturation (all sockets)
LATENCY_RATE = 500             # operations/s for the latency runs
REPLY_TIMEOUT = 2.0            # an answer later than this counts as lost

# Targets
FULL_RRQ_TARGET = 3000.0       # RRQ/s with N registered
KEEPALIVE_SHARE_TARGET = 0.05  # of the echo throughput
CALL_TARGET = 2000.0           # ARQ+DRQ pairs/s
RATIO_P50_TARGET = 1.5         # latency at N / latency at 100 (noisy machine)
RATIO_P99_TARGET = 2.0
RSS_TARGET_MB = 300.0


# ---------------------------------------------------------------------------
# Pre-encoded requests: templates with patchable fields
# ---------------------------------------------------------------------------

def _enc_seq(v: int) -> bytes:           # INTEGER (1..65535): 2 octets, value - 1
    return (v - 1).to_bytes(2, "big")


def _enc_port(v: int) -> bytes:          # INTEGER (0..65535)
    return v.to_bytes(2, "big")


def _enc_ip(v: str) -> bytes:            # OCTET STRING (SIZE(4)), octet-aligned
    return socket.inet_aton(v)


def _enc_bmp(v: str) -> bytes:           # BMPString characters, octet-aligned
    return v.encode("utf-16-be")


def _enc_raw(v: bytes) -> bytes:         # OCTET STRING (SIZE(16)) (GUIDs)
    return v


# name -> (encoder, value A, value B, how many times it occurs)
def _field_specs(id_length: int = 14) -> dict:
    return {
        "seq": (_enc_seq, 0x1235, 0xABCE, 1),
        "rasport": (_enc_port, 0x2345, 0xBCDE, 1),
        "sigip": (_enc_ip, "10.1.2.3", "11.4.5.6", 1),
        "alias": (_enc_bmp, "e111111111", "e222222222", 1),
        "dalias": (_enc_bmp, "e333333333", "e444444444", 1),
        "epid": (_enc_bmp, "Q" * id_length, "Z" * id_length, 1),
        "guid": (_enc_raw, bytes(range(1, 17)), bytes(range(101, 117)), 2),
    }


class Template:
    """An encoded request whose variable fields are patched in place."""

    def __init__(self, build, fields: list[str], check: dict, id_length: int = 14) -> None:
        specs = {name: _field_specs(id_length)[name] for name in fields}
        a = build({n: s[1] for n, s in specs.items()})
        b = build({n: s[2] for n, s in specs.items()})
        if len(a) != len(b):
            raise AssertionError("template fields change the message length")
        self.base = bytes(a)
        self.offsets: dict[str, list[int]] = {}
        self.encoders = {}
        covered = set()
        for name, (enc, va, vb, count) in specs.items():
            ea, eb = enc(va), enc(vb)
            found = [o for o in range(len(a) - len(ea) + 1)
                     if a[o:o + len(ea)] == ea and b[o:o + len(eb)] == eb]
            if len(found) != count:
                raise AssertionError(f"field {name} found at {found}, expected {count}")
            self.offsets[name] = found
            self.encoders[name] = enc
            for o in found:
                covered.update(range(o, o + len(ea)))
        stray = [i for i in range(len(a)) if a[i] != b[i] and i not in covered]
        if stray:
            raise AssertionError(f"unexpected differing bytes at {stray}")
        self.seq_offset = self.offsets["seq"][0]
        # the patched template must equal a real encoding
        if bytes(self.patch(check)) != build(check):
            raise AssertionError("patched template differs from a real encoding")

    def patch(self, values: dict) -> bytearray:
        buf = bytearray(self.base)
        offsets, encoders = self.offsets, self.encoders
        for name, value in values.items():
            data = encoders[name](value)
            for o in offsets[name]:
                buf[o:o + len(data)] = data
        return buf


def alias_of(i: int) -> str:
    return f"e{i:09d}"


def ip_of(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


class Messages:
    """The templates (built lazily, per endpointIdentifier length)."""

    def __init__(self) -> None:
        from gatekeeper.h225 import codec, ras
        from gatekeeper.testing import FakeEndpoint

        self.codec, self.ras, self.FakeEndpoint = codec, ras, FakeEndpoint
        self._cache: dict[tuple, Template] = {}
        root, _ = codec.choice_alternatives("RasMessage")
        self.kind_names = root
        # CHOICE index -> (name, offset of requestSeqNum) for the kinds we expect
        self.reply_table: list[tuple[str, int] | None] = [None] * 32
        ep = self._ep({"alias": "e000000001", "sigip": "10.0.0.1", "rasport": 5000})
        ep.endpoint_id = "123456_endp"
        samples = {
            "registrationConfirm": lambda s: ras.rcf(s, [("10.0.0.1", 1720)], "1_endp", GK_NAME,
                                                     ep.aliases, TTL, True),
            "registrationReject": lambda s: ras.rrj(s, "invalidCallSignalAddress", GK_NAME),
            "admissionConfirm": lambda s: ras.acf(s, 1280, ("10.0.0.1", 1720)),
            "admissionReject": lambda s: ras.arj(s, "calledPartyNotRegistered"),
            "disengageConfirm": lambda s: ras.dcf(s),
            "disengageReject": lambda s: ras.drj(s, "notRegistered"),
            "unregistrationConfirm": lambda s: ras.ucf(s),
            "registrationRequest": lambda s: self._seq(ep, s).rrq_message(keepalive=True),
        }
        for name, make in samples.items():
            a, b = codec.encode_ras(make(0x1235)), codec.encode_ras(make(0xABCE))
            index = (a[0] >> 2) & 0x1F
            if a[0] & 0x80 or root[index] != name:
                raise AssertionError(f"unexpected CHOICE index for {name}")
            offset = next(o for o in range(1, 5) if a[o:o + 2] == b"\x12\x34"
                          and b[o:o + 2] == b"\xab\xcd")
            self.reply_table[index] = (name, offset)

    @staticmethod
    def _seq(ep, seq):
        ep._seq = seq - 1
        return ep

    def _ep(self, v: dict, epid: str | None = None):
        ep = self.FakeEndpoint([self.ras.h323_id(v.get("alias", "e000000000"))],
                               signal_address=(v.get("sigip", "10.0.0.1"), 1720),
                               ras_address=("127.0.0.1", v.get("rasport", 1719)),
                               gatekeeper_id=GK_NAME)
        ep.endpoint_id = epid
        return ep

    def index(self, name: str) -> int:
        return self.kind_names.index(name)

    def _check(self, id_length: int) -> dict:
        return {"seq": 777, "rasport": 40001, "sigip": "10.0.3.7", "alias": "e000012345",
                "dalias": "e000067890",
                "epid": "".join(random.choice("0123456789")
                                for _ in range(id_length - 5)) + "_endp",
                "guid": os.urandom(16)}

    def rrq(self) -> Template:
        key = ("rrq",)
        if key not in self._cache:
            def build(v):
                return self._seq(self._ep(v), v["seq"]).rrq()
            self._cache[key] = Template(build, ["seq", "rasport", "sigip", "alias"],
                                        self._sub(self._check(14), "seq rasport sigip alias"))
        return self._cache[key]

    def keepalive(self, id_length: int) -> Template:
        key = ("keepalive", id_length)
        if key not in self._cache:
            def build(v):
                return self._seq(self._ep(v, v["epid"]), v["seq"]).rrq(keepalive=True)
            self._cache[key] = Template(
                build, ["seq", "rasport", "sigip", "alias", "epid"],
                self._sub(self._check(id_length), "seq rasport sigip alias epid"), id_length)
        return self._cache[key]

    def arq(self, id_length: int) -> Template:
        key = ("arq", id_length)
        if key not in self._cache:
            def build(v):
                ep = self._seq(self._ep(v, v["epid"]), v["seq"])
                ep._crv = 99
                return ep.arq([self.ras.h323_id(v["dalias"])], call_id=v["guid"])
            self._cache[key] = Template(
                build, ["seq", "alias", "dalias", "epid", "guid"],
                self._sub(self._check(id_length), "seq alias dalias epid guid"), id_length)
        return self._cache[key]

    def drq(self, id_length: int) -> Template:
        key = ("drq", id_length)
        if key not in self._cache:
            def build(v):
                ep = self._ep(v, v["epid"])
                ep._crv = 99
                ep.arq([self.ras.h323_id("x")], call_id=v["guid"])
                return self._seq(ep, v["seq"]).drq(v["guid"])
            self._cache[key] = Template(
                build, ["seq", "epid", "guid"],
                self._sub(self._check(id_length), "seq epid guid"), id_length)
        return self._cache[key]

    @staticmethod
    def _sub(values: dict, names: str) -> dict:
        return {n: values[n] for n in names.split()}


# ---------------------------------------------------------------------------
# The load generator (runs in its own process)
# ---------------------------------------------------------------------------

OK, REJECTED = 0, 1


class Pool:
    """The sockets (simulated endpoints' RAS addresses) talking to one server."""

    def __init__(self, target: tuple[str, int], nsock: int) -> None:
        self.target, self.nsock = target, nsock
        self.socks: list[socket.socket] = []
        self.poller = select.epoll()
        self.fd_index: dict[int, int] = {}
        for si in range(nsock):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
            s.connect(target)
            s.setblocking(False)
            self.socks.append(s)
            self.fd_index[s.fileno()] = si
            self.poller.register(s.fileno(), select.EPOLLIN)
        self.ports = [s.getsockname()[1] for s in self.socks]
        # requestSeqNum per socket: unique per (socket, kind) far longer than the
        # gatekeeper's 10 s retransmission window at these rates
        self.seqs = [random.randrange(1, 65536) for _ in range(nsock)]
        self.inflight: list[dict[int, tuple]] = [{} for _ in range(nsock)]
        self.ids: dict[int, str] = {}           # endpoint index -> endpointIdentifier

    def registered(self, limit: int | None = None) -> list[tuple[int, str]]:
        items = sorted(self.ids.items())
        return items[:limit] if limit else items


class Register:
    """Full RRQs for endpoint indexes; with ``record``, keep the endpointIdentifiers."""

    def __init__(self, gen: "Generator", pool: Pool, indexes, record: bool) -> None:
        self.gen, self.pool, self.indexes, self.record = gen, pool, iter(indexes), record
        self.template = gen.messages.rrq()
        self.rcf = gen.messages.index("registrationConfirm")
        self.checked = 0

    def start(self, now: float):
        i = next(self.indexes)
        si = i % self.pool.nsock
        buf = self.template.patch({"rasport": self.pool.ports[si], "sigip": ip_of(i),
                                   "alias": alias_of(i)})
        return si, buf, self.template.seq_offset, (i, now), "RRQ"

    def reply(self, state, label, index, data, now):
        if index != self.rcf:
            return REJECTED
        if self.record:
            self.pool.ids[state[0]] = self.gen.endpoint_id_from(
                data, self.checked < 20 or random.random() < 0.002)
            self.checked += 1
        return OK


class Keepalive:
    """Full keepalive RRQs, round robin over registered endpoints (or echoed)."""

    def __init__(self, gen: "Generator", pool: Pool, endpoints: list[tuple[int, str]],
                 expect: str) -> None:
        self.pool, self.endpoints = pool, endpoints
        self.expect = gen.messages.index(expect)
        self.k = 0
        self.templates = {len(e): gen.messages.keepalive(len(e)) for _, e in endpoints}
        self.cache: dict[int, bytes] = {}       # endpoint -> its keepalive (seq aside)

    def start(self, now: float):
        i, epid = self.endpoints[self.k % len(self.endpoints)]
        self.k += 1
        si = i % self.pool.nsock
        template = self.templates[len(epid)]
        base = self.cache.get(i)
        if base is None:
            base = self.cache[i] = bytes(template.patch(
                {"rasport": self.pool.ports[si], "sigip": ip_of(i), "alias": alias_of(i),
                 "epid": epid}))
        return si, bytearray(base), template.seq_offset, (i, now), "keepalive RRQ"

    def reply(self, state, label, index, data, now):
        return OK if index == self.expect else REJECTED


class Calls:
    """ARQ for another registered endpoint's alias; on ACF, DRQ; the op ends at DCF."""

    def __init__(self, gen: "Generator", pool: Pool, endpoints: list[tuple[int, str]]) -> None:
        self.pool, self.endpoints = pool, endpoints
        self.k = 0
        self.offset = len(endpoints) // 2 + 1
        lengths = {len(e) for _, e in endpoints}
        self.arqs = {n: gen.messages.arq(n) for n in lengths}
        self.drqs = {n: gen.messages.drq(n) for n in lengths}
        self.acf = gen.messages.index("admissionConfirm")
        self.dcf = gen.messages.index("disengageConfirm")
        self.prefix = os.urandom(8)
        self.calls = 0

    def start(self, now: float):
        n = len(self.endpoints)
        i, epid = self.endpoints[self.k % n]
        callee, _ = self.endpoints[(self.k + self.offset) % n]
        self.k += 1
        self.calls += 1
        guid = self.prefix + self.calls.to_bytes(8, "big")
        template = self.arqs[len(epid)]
        buf = template.patch({"alias": alias_of(i), "dalias": alias_of(callee), "epid": epid,
                              "guid": guid})
        return i % self.pool.nsock, buf, template.seq_offset, (i, now, epid, guid), "ARQ"

    def reply(self, state, label, index, data, now):
        if label == "ARQ":
            if index != self.acf:
                return REJECTED
            _, _, epid, guid = state
            template = self.drqs[len(epid)]
            return template.patch({"epid": epid, "guid": guid}), template.seq_offset, state, "DRQ"
        return OK if index == self.dcf else REJECTED


class Generator:
    def __init__(self) -> None:
        self.messages = Messages()
        self.id_suffix = "_endp".encode("utf-16-be")

    def endpoint_id_from(self, data: bytes, check: bool) -> str:
        """The endpointIdentifier of an RCF, found without a full decode."""
        end = data.find(self.id_suffix)
        epid = None
        if end > 0:
            j = end
            while j >= 2 and data[j - 2] == 0 and 0x30 <= data[j - 1] <= 0x39:
                j -= 2
            epid = data[j:end + len(self.id_suffix)].decode("utf-16-be")
        if epid is None or check:
            decoded = self.messages.codec.decode_ras(data)[1]["endpointIdentifier"]
            if epid is not None and decoded != epid:
                raise AssertionError(f"endpointIdentifier {epid!r} != {decoded!r}")
            epid = decoded
        return epid

    def _slow_kind(self, data: bytes) -> tuple[int, str, int]:
        try:
            name, value = self.messages.codec.decode_ras(data)
            return -1, name, value.get("requestSeqNum", -1)
        except Exception:
            return -1, "undecodable", -1

    def run(self, pool: Pool, wl, duration: float, window: int, rate: float | None = None,
            warmup: float = 0.0, max_ops: int | None = None) -> dict:
        """Drive ``wl`` through ``pool``; bounded by ``duration`` (+ drain) and ``max_ops``."""
        perf = time.perf_counter
        socks, inflight, seqs = pool.socks, pool.inflight, pool.seqs
        table, fd_index, poll = self.messages.reply_table, pool.fd_index, pool.poller.poll
        kinds: Counter[str] = Counter()
        latencies: dict[str, list[float]] = {}
        op_lat: list[float] = []
        started = outstanding = ok_window = ok = rejected = lost = unmatched = send_errors = 0
        cpu0 = os.times()
        t0 = perf()
        t_meas, t_end = t0 + warmup, t0 + warmup + duration
        deadline = t_end + REPLY_TIMEOUT + 0.5
        next_sweep = t0 + 0.2

        def send(si, buf, off, state, label, now):
            seq = seqs[si] = seqs[si] % 65535 + 1
            buf[off] = (seq - 1) >> 8
            buf[off + 1] = (seq - 1) & 0xFF
            try:
                socks[si].send(buf)
            except OSError:
                return False
            inflight[si][seq] = (now, state, label)
            return True

        gc.disable()
        try:
            while True:
                now = perf()
                sending = now < t_end and (max_ops is None or started < max_ops)
                if not sending and (outstanding == 0 or now > deadline):
                    break
                if sending:
                    room = window - outstanding
                    if rate is not None:
                        room = min(room, int((now - t0) * rate) + 1 - started)
                    for _ in range(max(0, room)):
                        if max_ops is not None and started >= max_ops:
                            break
                        si, buf, off, state, label = wl.start(now)
                        started += 1
                        if send(si, buf, off, state, label, now):
                            outstanding += 1
                        else:
                            send_errors += 1
                    if rate is not None:
                        timeout = max(0.0, min(0.005, t0 + started / rate - perf()))
                    else:
                        timeout = 0.005
                else:
                    timeout = 0.01
                for fd, _ in poll(timeout):
                    si = fd_index[fd]
                    sock = socks[si]
                    pending = inflight[si]
                    while True:
                        try:
                            data = sock.recv(4096)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                        now = perf()
                        entry = table[(data[0] >> 2) & 0x1F] if data and not data[0] & 0x80 \
                            else None
                        if entry is None:
                            index, name, seq = self._slow_kind(data)
                        else:
                            name, off = entry
                            index = (data[0] >> 2) & 0x1F
                            seq = ((data[off] << 8) | data[off + 1]) + 1
                        kinds[name] += 1
                        sent = pending.pop(seq, None)
                        if sent is None:
                            unmatched += 1
                            continue
                        t_sent, state, label = sent
                        if t_meas <= t_sent < t_end:
                            latencies.setdefault(label, []).append(now - t_sent)
                        result = wl.reply(state, label, index, data, now)
                        if result == OK or result == REJECTED:
                            outstanding -= 1
                            if result == OK:
                                ok += 1
                                if t_meas <= now <= t_end:
                                    ok_window += 1
                                if t_meas <= state[1] < t_end:
                                    op_lat.append(now - state[1])
                            else:
                                rejected += 1
                        else:
                            buf, off, state, label = result
                            if not send(si, buf, off, state, label, now):
                                send_errors += 1
                                outstanding -= 1
                if now >= next_sweep:
                    next_sweep = now + 0.2
                    for pending in inflight:
                        for seq in [s for s, v in pending.items() if now - v[0] > REPLY_TIMEOUT]:
                            del pending[seq]
                            lost += 1
                            outstanding -= 1
        finally:
            gc.enable()
        elapsed = perf() - t0
        for pending in inflight:
            lost += len(pending)
            pending.clear()
        cpu1 = os.times()
        measured = min(duration, max(1e-9, elapsed - warmup))
        return {
            "started": started, "ok": ok, "rejected": rejected, "lost": lost,
            "unmatched": unmatched, "send_errors": send_errors, "kinds": dict(kinds),
            "elapsed": elapsed, "rate": ok_window / measured if max_ops is None else ok / elapsed,
            "samples": latencies, "op_samples": op_lat,
            "gen_cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed,
        }


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan")}
    values = sorted(values)
    return {"n": len(values), "p50": values[len(values) // 2],
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))]}


def generator_main(conn, lifetime: float) -> None:
    """Child process: executes the parent's commands until told to stop."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(lifetime))           # dies by itself if the parent is gone
    random.seed(12345)
    gen = Generator()
    pools: dict[str, Pool] = {}
    workloads: dict[tuple, object] = {}     # reused, so round robins carry on
    conn.send(("ready", None))
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
            run = dict(duration=args.get("duration", 0.0), window=WINDOW,
                       rate=args.get("rate"), warmup=args.get("warmup", 0.0),
                       max_ops=args.get("max_ops"))
            key = (args["pool"], command, args.get("limit"))
            if command == "register":
                wl = Register(gen, pool, range(args["first"], args["first"] + args["count"]),
                              record=True)
                run.update(duration=args["budget"], max_ops=args["count"])
            elif command == "register_fresh":
                key = key + (args["first"],)
                if key not in workloads:
                    workloads[key] = Register(gen, pool, range(args["first"], 2**31), record=False)
                wl = workloads[key]
            elif command == "keepalive":
                if key not in workloads:
                    if args.get("echo"):
                        endpoints = [(i, f"{123456789 + i}_endp") for i in range(args["limit"])]
                        workloads[key] = Keepalive(gen, pool, endpoints, "registrationRequest")
                    else:
                        workloads[key] = Keepalive(gen, pool, pool.registered(args.get("limit")),
                                                   "registrationConfirm")
                wl = workloads[key]
            elif command == "calls":
                if key not in workloads:
                    workloads[key] = Calls(gen, pool, pool.registered(args.get("limit")))
                wl = workloads[key]
            else:
                raise ValueError(command)
            result = gen.run(pool, wl, **run)
            result["registered"] = len(pool.ids)
            conn.send(("ok", result))
        except Exception as error:  # report, keep serving
            import traceback
            conn.send(("error", traceback.format_exc() or repr(error)))


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

ECHO_SERVER = """
import sys
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
class Echo(DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)
port = reactor.listenUDP(0, Echo(), interface="127.0.0.1", maxPacketSize=8192)
reactor.callLater(float(sys.argv[1]), reactor.stop)
print(port.getHost().port, flush=True)
reactor.run()
"""


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path | None = None) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_echo(lifetime: float) -> Server:
    process = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(lifetime)],
                               stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    return Server(process, port)


def code_state() -> str:
    """The commit measured, and the files of gatekeeper/ changed since it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cd",
                               "--date=format:%Y-%m-%d %H:%M"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "gatekeeper"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return head + (f" + uncommitted: {', '.join(dirty)}" if dirty else "")


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def extra_options() -> list[str]:
    """Options of newer gatekeepers: no status port (its default 7000 would clash)."""
    try:
        tap = (ROOT / "gatekeeper" / "tap.py").read_text()
    except OSError:
        return []
    return ["--status-port", "0"] if "status-port" in tap else []


def start_gatekeeper(workdir: Path, lifetime: float, profile_dir: Path | None) -> Server:
    port = free_udp_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["BENCH_LIFETIME"] = str(lifetime)
    if profile_dir is not None:
        env["BENCH_PROFILE_DIR"] = str(profile_dir)
    log = workdir / "twistd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=", "gatekeeper",
             "--name", GK_NAME, "--interface", "127.0.0.1", "--ras-port", str(port),
             "--discovery-port", "0", "--ttl", str(TTL), *extra_options()],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "serving RAS" in text:
            return Server(process, port, log)
        if process.poll() is not None:
            raise RuntimeError(f"gatekeeper exited {process.returncode}:\n{text}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("gatekeeper not ready after 60 s")


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.n = args.endpoints or (5_000 if self.quick else 100_000)
        self.small = min(100, self.n)
        self.nsock = 32 if self.quick else 128
        self.sat = 2.0 if self.quick else 8.0
        self.lat = 2.0 if self.quick else 6.0          # per server and kind, in slices
        self.slices = 2 if self.quick else 4
        self.warmup = 0.5 if self.quick else 1.0
        self.lifetime = 300 if self.quick else 1500
        self.results: dict[str, dict] = {}
        self.notes: list[str] = []
        self.profile_dir = Path(args.profile).resolve() if args.profile else None

    # -- plumbing -----------------------------------------------------------

    def call(self, command: str, **args) -> dict:
        self.conn.send((command, args))
        budget = args.get("budget", args.get("duration", 0) + args.get("warmup", 0)) + 60
        if not self.conn.poll(budget):
            raise RuntimeError(f"load generator did not answer {command} in {budget:.0f} s")
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"load generator failed on {command}:\n{result}")
        return result

    def phase(self, name: str, server: Server, command: str, profile: bool = False,
              quiet: bool = False, **args) -> dict:
        profiling = profile and self.profile_dir is not None
        if profiling:
            (self.profile_dir / "next").write_text(name)
            os.kill(server.pid, signal.SIGRTMIN + 3)
        cpu0, busy0, t0 = server.cpu(), machine_busy(), time.perf_counter()
        result = self.call(command, **args)
        wall = time.perf_counter() - t0
        result["wall"] = wall
        result["server_cpu_s"] = server.cpu() - cpu0
        result["gen_cpu_s"] = result["gen_cpu"] * result["elapsed"]
        result["busy_s"] = machine_busy() - busy0
        if profiling:
            before = set(self.profile_dir.glob("*.prof"))
            os.kill(server.pid, signal.SIGRTMIN + 4)
            self._wait_for_new(before)
        if name in self.results:                       # another slice: merge
            old = self.results[name]
            for key in ("ok", "rejected", "lost", "unmatched", "started", "wall", "elapsed",
                        "server_cpu_s", "gen_cpu_s", "busy_s"):
                old[key] += result[key]
            for label, values in result["samples"].items():
                old["samples"].setdefault(label, []).extend(values)
            old["kinds"] = dict(Counter(old["kinds"]) + Counter(result["kinds"]))
            old["rate"] = (old["rate"] * old["slices"] + result["rate"]) / (old["slices"] + 1)
            old["slices"] += 1
            result = old
        else:
            result["slices"] = 1
            self.results[name] = result
        result["server_cpu"] = result["server_cpu_s"] / result["wall"]
        result["gen_share"] = max(0.0, result["gen_cpu_s"] / result["wall"])
        result["other_cpu"] = max(0.0, (result["busy_s"] - result["server_cpu_s"]
                                        - result["gen_cpu_s"]) / result["wall"])
        result["latency"] = {k: summary(v) for k, v in result["samples"].items()}
        if not quiet:
            self.show(name, result)
        return result

    @staticmethod
    def show(name: str, result: dict) -> None:
        lat_text = " ".join(f"{k} p50 {v['p50'] * 1e3:.2f} p99 {v['p99'] * 1e3:.2f} ms"
                            for k, v in result["latency"].items())
        print(f"  {name:<26} {result['rate']:>8.0f}/s ok {result['ok']} rej {result['rejected']}"
              f" lost {result['lost']} | {lat_text} | cpu server {result['server_cpu']:.0%}"
              f" gen {result['gen_share']:.0%} others {result['other_cpu']:.0%}", flush=True)

    def _wait_for_new(self, before: set) -> None:
        deadline = time.monotonic() + 60
        while set(self.profile_dir.glob("*.prof")) == before and time.monotonic() < deadline:
            time.sleep(0.1)

    # -- phases -------------------------------------------------------------

    def run(self) -> int:
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="bench-ras-"))
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        child = ctx.Process(target=generator_main, args=(child_conn, self.lifetime), daemon=True)
        child.start()
        echo = small = big = None
        try:
            echo = start_echo(self.lifetime)
            if not self.conn.poll(120):
                raise RuntimeError("load generator did not start")
            self.conn.recv()
            print(f"code: {code_state()}", flush=True)
            print(f"RAS benchmark: {self.n:,} endpoints, {self.nsock} sockets per server,"
                  f" window {WINDOW}, saturation runs {self.sat:.0f} s, latency runs"
                  f" {self.lat:.0f} s at {LATENCY_RATE} ops/s", flush=True)
            print("echo server (bare Twisted UDP)", flush=True)
            self.call("pool", name="echo", target=("127.0.0.1", echo.port), nsock=self.nsock)
            common = dict(pool="echo", echo=True, limit=1000, warmup=self.warmup)
            self.phase("echo", echo, "keepalive", duration=self.sat, **common)
            self.phase("echo latency", echo, "keepalive", duration=self.lat, rate=LATENCY_RATE,
                       **common)
            echo.stop()

            # two gatekeepers: one keeps 100 endpoints, the other N; the latency
            # comparison alternates between them so that the machine's noise
            # hits both alike
            (workdir / "small").mkdir()
            (workdir / "big").mkdir()
            small = start_gatekeeper(workdir / "small", self.lifetime, None)
            big = start_gatekeeper(workdir / "big", self.lifetime, self.profile_dir)
            self.call("pool", name="small", target=("127.0.0.1", small.port), nsock=self.nsock)
            self.call("pool", name="big", target=("127.0.0.1", big.port), nsock=self.nsock)
            print(f"gatekeepers: pid {small.pid} (for {self.small} endpoints), pid {big.pid}"
                  f" (for {self.n:,}); RSS at start {big.rss_mb():.1f} MB", flush=True)
            self.results["rss start"] = {"rss": big.rss_mb()}
            self.phase("register 100", small, "register", pool="small", first=0,
                       count=self.small, budget=60)
            t0 = time.perf_counter()
            result = self.phase("preload", big, "register", pool="big", first=0, count=self.n,
                                budget=120 if self.quick else 900)
            result["took"] = time.perf_counter() - t0
            if result["registered"] != self.n:
                self.notes.append(f"only {result['registered']} of {self.n} endpoints registered")
            print(f"  preload: {self.n:,} RRQ in {result['took']:.1f} s"
                  f" ({self.n / result['took']:.0f}/s); {result['registered']:,} registered",
                  flush=True)
            self.results["rss preload"] = {"rss": big.rss_mb()}
            # The gatekeeper builds an endpoint's keepalive RCF at its first
            # keepalive: one keepalive per endpoint first, so that what follows
            # measures the steady state (and the RSS includes those RCFs).
            t0 = time.perf_counter()
            result = self.phase("first keepalives", big, "keepalive", pool="big",
                                duration=120 if self.quick else 900, max_ops=self.n)
            result["took"] = time.perf_counter() - t0
            self.phase("first keepalives @100", small, "keepalive", pool="small",
                       limit=self.small, duration=60, max_ops=self.small, quiet=True)
            time.sleep(1.0)
            self.results["rss"] = {"rss": big.rss_mb(), "small": small.rss_mb()}
            print(f"  RSS with {result['registered']:,} endpoints: {big.rss_mb():.1f} MB"
                  f" (after preload {self.results['rss preload']['rss']:.1f} MB; with"
                  f" {self.small}: {small.rss_mb():.1f} MB)", flush=True)

            slice_time = self.lat / self.slices
            for i in range(self.slices):
                for kind, rate in (("keepalive", LATENCY_RATE), ("calls", LATENCY_RATE / 2)):
                    for tag, server in (("@100", small), (f"@{self.n}", big)):
                        self.phase(f"{kind} latency {tag}", server, kind,
                                   pool="small" if server is small else "big",
                                   duration=slice_time, warmup=0.2, rate=rate,
                                   quiet=i < self.slices - 1)
            self.phase("keepalive", big, "keepalive", pool="big", profile=True,
                       duration=self.sat, warmup=self.warmup)
            self.phase("calls", big, "calls", pool="big", profile=True, duration=self.sat,
                       warmup=self.warmup)
            self.phase("full RRQ latency", big, "register_fresh", pool="big", first=10_000_000,
                       duration=self.lat, warmup=self.warmup, rate=LATENCY_RATE)
            self.phase("full RRQ", big, "register_fresh", pool="big", profile=True,
                       first=20_000_000, duration=self.sat, warmup=self.warmup)
            self.results["rss end"] = {"rss": big.rss_mb()}
        finally:
            try:
                if child.is_alive():
                    self.conn.send(("stop", {}))
                    child.join(10)
            finally:
                if child.is_alive():
                    child.terminate()
                    child.join(5)
                for server in (echo, small, big):
                    if server is not None:
                        server.stop()
                for server in (small, big):
                    if server is None:
                        continue
                    log = server.log.read_text(errors="replace")
                    problems = [line for line in log.splitlines()
                                if "Traceback" in line or "failed" in line or "dropped" in line]
                    if problems:
                        self.notes.append(f"gatekeeper log: {len(problems)} problem lines,"
                                          f" e.g. {problems[0][:160]}")
                shutil.rmtree(workdir, ignore_errors=True)
        failed = self.table(time.perf_counter() - started)
        if self.profile_dir is not None:
            self.print_profiles()
        return 1 if failed else 0

    # -- report -------------------------------------------------------------

    def table(self, elapsed: float) -> bool:
        r = self.results
        n = self.n
        echo = r["echo"]["rate"]
        echo_lat = r["echo latency"]["latency"]["keepalive RRQ"]
        rows = []
        failed = False

        def ms(v):
            return f"{v * 1e3:.2f}"

        def per_core(res):
            return f"{res['ok'] / res['server_cpu_s']:,.0f}" if res["server_cpu_s"] else ""

        def row(name, value, p50="", p99="", target="", vs_echo="", core="", ok=None):
            nonlocal failed
            verdict = "" if ok is None else ("PASS" if ok else "FAIL")
            failed |= ok is False
            rows.append((name, value, p50, p99, target, vs_echo, core, verdict))

        def lat(res, label="keepalive RRQ"):
            return res["latency"].get(label, {"p50": float("nan"), "p99": float("nan")})

        row("echo baseline, echoes/s", f"{echo:,.0f}", ms(echo_lat["p50"]), ms(echo_lat["p99"]),
            "", "1", per_core(r["echo"]))
        pre = r["preload"]
        row(f"preload {n:,} RRQ: {pre['took']:.1f} s, RRQ/s", f"{n / pre['took']:,.0f}",
            ms(lat(pre, "RRQ")["p50"]) + "*", ms(lat(pre, "RRQ")["p99"]) + "*", "",
            f"{pre['rate'] / echo:.3f}", per_core(pre))
        first = r["first keepalives"]
        row(f"first keepalive of each: {first['took']:.1f} s, /s", f"{n / first['took']:,.0f}",
            ms(lat(first)["p50"]) + "*", ms(lat(first)["p99"]) + "*", "",
            f"{first['rate'] / echo:.3f}", per_core(first))
        full, full_lat = r["full RRQ"], lat(r["full RRQ latency"], "RRQ")
        row(f"a. full RRQ/s @{n:,}", f"{full['rate']:,.0f}", ms(full_lat["p50"]),
            ms(full_lat["p99"]), f">= {FULL_RRQ_TARGET:,.0f}", f"{full['rate'] / echo:.3f}",
            per_core(full), full["rate"] >= FULL_RRQ_TARGET)
        ka, ka_lat = r["keepalive"], lat(r[f"keepalive latency @{n}"])
        row(f"b. keepalive RRQ/s @{n:,}", f"{ka['rate']:,.0f}", ms(ka_lat["p50"]),
            ms(ka_lat["p99"]), f">= {KEEPALIVE_SHARE_TARGET * echo:,.0f} (5% echo)",
            f"{ka['rate'] / echo:.3f}", per_core(ka), ka["rate"] >= KEEPALIVE_SHARE_TARGET * echo)
        calls = r["calls"]
        arq = lat(r[f"calls latency @{n}"], "ARQ")
        drq = lat(r[f"calls latency @{n}"], "DRQ")
        row(f"c. ARQ+DRQ pairs/s @{n:,}", f"{calls['rate']:,.0f}",
            f"{ms(arq['p50'])}/{ms(drq['p50'])}", f"{ms(arq['p99'])}/{ms(drq['p99'])}",
            f">= {CALL_TARGET:,.0f}", f"{2 * calls['rate'] / echo:.3f} msgs", per_core(calls),
            calls["rate"] >= CALL_TARGET)
        small_ka, big_ka = lat(r["keepalive latency @100"]), ka_lat
        small_arq, big_arq = lat(r["calls latency @100"], "ARQ"), arq
        for label, small, big, key, target in (
                ("keepalive p50", small_ka, big_ka, "p50", RATIO_P50_TARGET),
                ("keepalive p99", small_ka, big_ka, "p99", RATIO_P99_TARGET),
                ("ARQ p50", small_arq, big_arq, "p50", RATIO_P50_TARGET),
                ("ARQ p99", small_arq, big_arq, "p99", None)):
            ratio = big[key] / small[key]
            change = f"{ms(small[key])} -> {ms(big[key])}"
            row(f"d. {label} @{n:,} / @{self.small}", f"{ratio:.2f}",
                change if key == "p50" else "", change if key == "p99" else "",
                f"<= {target}" if target else "(info)", f"{big[key] / echo_lat[key]:.1f}x",
                "", ratio <= target if target else None)
        rss = r["rss"]["rss"]
        row(f"e. RSS MB @{n:,}", f"{rss:.1f}", "", "", f"<= {RSS_TARGET_MB:.0f}", "", "",
            rss <= RSS_TARGET_MB)
        row(f"   (RSS: start / preloaded / @{self.small} / end)",
            f"{r['rss start']['rss']:.0f} / {r['rss preload']['rss']:.0f} /"
            f" {r['rss']['small']:.0f} / {r['rss end']['rss']:.0f}")

        headers = ("measure", "value", "p50 ms", "p99 ms", "target", "vs echo", "per CPU-s",
                   "result")
        widths = [max(len(str(x[i])) for x in rows + [headers]) for i in range(len(headers))]
        print()
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        print("  ".join("-" * w for w in widths))
        for line in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
        print()
        print(f"Throughput at saturation (closed loop, {WINDOW} ops in flight, first"
              f" {self.warmup:g} s dropped); p50/p99 at moderate load (open loop,"
              f" {LATENCY_RATE} ops/s, ARQ+DRQ {LATENCY_RATE // 2} pairs/s: ARQ/DRQ), except *"
              " (at saturation).  Keepalives are measured after each endpoint's first one."
              "  'per CPU-s': answers per CPU second of the server process, which the"
              " machine's other load does not change much.  d. compares a"
              f" gatekeeper holding {self.small} endpoints with one holding {n:,}, measured in"
              f" {self.slices} alternating slices.")
        print("Answers per phase: ok = expected kind (RCF / ACF+DCF / echo), rej = other"
              " answers, lost = none within 2 s; CPU in % of one core:")
        for name, res in r.items():
            if "kinds" not in res:
                continue
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(res["kinds"].items()))
            print(f"  {name:<24} ok {res['ok']:>7} rej {res['rejected']:>4} lost {res['lost']:>4}"
                  f" unmatched {res['unmatched']:>3} | cpu server {res['server_cpu']:>4.0%}"
                  f" gen {res['gen_share']:>4.0%} others {res['other_cpu']:>4.0%} | {kinds}")
        for name in ("echo", "keepalive", "calls", "full RRQ"):
            res = r[name]
            if res["server_cpu"] < 0.9:
                self.notes.append(
                    f"the server had {res['server_cpu']:.0%} of a core during '{name}' (other"
                    f" processes used {res['other_cpu']:.0%}): that throughput is limited by the"
                    f" machine; the server's own capacity is nearer its 'per CPU-s' figure"
                    f" ({per_core(res)}/s)")
        if self.profile_dir is not None:
            self.notes.append("--profile: the saturation runs of the big gatekeeper ran under"
                              " cProfile, so their throughput is understated")
        for note in self.notes:
            print("NOTE:", note)
        print(f"total time {elapsed:.0f} s; {'FAIL' if failed else 'PASS'}")
        return failed

    def print_profiles(self) -> None:
        import pstats

        import json

        print("\nGarbage collector in the big gatekeeper while profiled"
              " (generation: passes, total s, longest s):")
        for path in sorted(self.profile_dir.glob("*.gc.json")):
            info = json.loads(path.read_text())
            text = "; ".join(f"gen{g}: {v['count']}, {v['seconds']:.3f}, {v['max']:.3f}"
                             for g, v in info["collections"].items())
            print(f"  {path.name[:-8]:<32} {text} | {info['objects']:,} objects tracked")
        for name in ("keepalive", "calls", "full RRQ"):
            path = self.profile_dir / f"{name}.prof"
            if not path.exists():
                continue
            print(f"\n=== gatekeeper profile (CPU time): {name}, top 25 by own time ===")
            stats = pstats.Stats(str(path))
            stats.sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (~1 min)")
    parser.add_argument("--endpoints", type=int, default=0, help="endpoints to preload")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile the gatekeeper during the saturation runs")
    args = parser.parse_args()
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
