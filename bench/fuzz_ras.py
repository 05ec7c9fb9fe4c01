"""Fuzz the running gatekeeper's RAS port over loopback (a script, not a test).

    python bench/fuzz_ras.py [--count N] [--seed S] [--batch B] [--config FILE]

Starts the real ``twistd -n gatekeeper`` (through bench/_gkrun.py, which stops it by itself
after a deadline) on 127.0.0.1 with a free RAS port, no discovery socket and no status port,
then sends N (default 500,000) mutated RAS datagrams to it and prints a table:

* the corpus: the real endpoint datagrams of tests/data/vectors/, our encodings of every RAS
  message kind (tests/asn1_values.py: everything filled in, and minimal), requests carrying
  aliases and addresses of odd shapes (unknown extension alternatives of mobileUIM, partyNumber,
  AliasAddress...; LRQs replying to IPv6, broadcast, port 0), and the requests of endpoints
  registered from the fuzzing sockets (so that mutations get past "not registered");
* the mutations: those of tests/test_codec_robustness.py (truncations, bit flips, overwritten,
  inserted and deleted bytes, splices, trailing garbage, repeated slices, length-determinant
  bytes), from a seeded generator; one datagram in twenty goes unmutated;
* interleaved valid requests: after every B (default 32) mutated datagrams, one of a set of
  probe endpoints (registered from sockets the fuzz never uses) sends a valid request (keepalive
  RRQ, GRQ, ARQ then DRQ, LRQ, IRR asking for an answer, RAI) and waits for its answer (resent
  up to 3 times, 1 s apart; the retransmission cache then answers).  That wait also paces the
  fuzz: the gatekeeper has read everything sent before, so the kernel does not drop datagrams
  for want of buffer (the socket's drop counter in /proc/net/udp is reported anyway).

Reported: datagrams sent, answers received (to anything), valid requests sent / answered
(must be all) / confirmed, resends, kernel drops, tracebacks and critical lines in the
gatekeeper's log, log bytes and lines, the gatekeeper's VmRSS before and after the fuzz (and
VmHWM), its CPU time, and the wall time.  The exit status is 1 when a valid request went
unanswered or the log holds a traceback or a critical line.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gatekeeper.errors import DecodeError  # noqa: E402
from gatekeeper.h225 import codec, ras  # noqa: E402
from gatekeeper.testing import FakeEndpoint  # noqa: E402

from asn1_values import full_ras, minimal_ras, ras_alternatives  # noqa: E402
from test_codec_robustness import mutate  # noqa: E402
from testdata import VECTORS  # noqa: E402

GK_NAME = "FUZZ"
FUZZ_SOCKETS = 16
PROBES = 8
RESENDS = 3
WAIT = 1.0            # seconds per try of a valid request
LIFETIME = 3600.0     # the gatekeeper stops by itself after this


# --- the gatekeeper process ------------------------------------------------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gatekeeper:
    def __init__(self, workdir: Path, config: str | None) -> None:
        self.port = free_udp_port()
        self.log = workdir / "twistd.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["BENCH_LIFETIME"] = str(LIFETIME)
        command = [sys.executable, str(ROOT / "bench" / "_gkrun.py"), "-n", "--pidfile=",
                   "gatekeeper", "--name", GK_NAME, "--interface", "127.0.0.1",
                   "--ras-port", str(self.port), "--discovery-port", "0", "--status-port", "0"]
        if config:
            command += ["--config", str(Path(config).resolve())]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "serving RAS" in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"gatekeeper exited {self.process.returncode}:\n"
                                   + self.log.read_text(errors="replace"))
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("gatekeeper not ready after 60 s")

    def status(self, field: str) -> float:
        """A /proc/PID/status field in MiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def drops(self) -> int:
        """The kernel's drop counter of the gatekeeper's RAS socket (/proc/net/udp)."""
        local = f"0100007F:{self.port:04X}"
        try:
            with open("/proc/net/udp") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 12 and fields[1] == local:
                        return int(fields[-1])
        except OSError:
            pass
        return -1

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# --- the corpus ----------------------------------------------------------------------------

ODD_ALIASES = [
    ("mobileUIM", ("?extension-0", bytes.fromhex("0060a4"))),
    ("partyNumber", ("?extension-2", b"\x01\x02")),
    ("isupNumber", ("?extension-0", b"\x07")),
    ("transportID", ("?extension-1", b"\x05\x06")),
    ("transportID", ("netBios", b"NETBIOSNAME12345")),
    ("?extension-6", b"\x42"),
]
ODD_REPLY_ADDRESSES = [("2001:db8::7", 1719), ("::ffff:127.0.0.9", 1719), ("0.0.0.0", 1719),
                       ("255.255.255.255", 1719), ("127.0.0.9", 0), ("224.0.1.41", 1718)]


def real_vectors() -> list[bytes]:
    return [bytes.fromhex("".join(path.read_text().split())) for path in sorted(VECTORS.rglob("*.hex"))]


def our_encodings() -> list[bytes]:
    encodings = []
    for kind in ras_alternatives():
        for seed in (0, 1):
            encodings.append(codec.encode_ras(full_ras(kind, seed)))
        for seed in (0, 1, 2):
            encodings.append(codec.encode_ras(minimal_ras(kind, seed)))
    return encodings


def crafted() -> list[bytes]:
    data = []
    for seq, alias in enumerate(ODD_ALIASES, 1):
        data.append(codec.encode_ras(("gatekeeperRequest", {
            "requestSeqNum": seq, "protocolIdentifier": "0.0.8.2250.0.4",
            "rasAddress": ras.transport_to_asn(("127.0.0.1", 1719)),
            "endpointType": ras.endpoint_type_value("terminal"), "endpointAlias": [alias]})))
    for seq, address in enumerate(ODD_REPLY_ADDRESSES, 1):
        data.append(codec.encode_ras(("locationRequest", {
            "requestSeqNum": seq, "destinationInfo": [("dialledDigits", "4930123")],
            "replyAddress": ras.transport_to_asn(address), "canMapAlias": False})))
    return data


# --- talking to it -------------------------------------------------------------------------

class Link:
    """One UDP socket on 127.0.0.1, connected to the gatekeeper."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.send(data)
            return True
        except OSError:       # e.g. ECONNREFUSED from an ICMP error: the gatekeeper is gone
            return False

    def drain(self) -> list[bytes]:
        received = []
        while True:
            try:
                received.append(self.sock.recv(65536))
            except (BlockingIOError, InterruptedError):
                return received
            except OSError:
                return received


REPLIES = {
    "gatekeeperRequest": ("gatekeeperConfirm", "gatekeeperReject"),
    "registrationRequest": ("registrationConfirm", "registrationReject"),
    "admissionRequest": ("admissionConfirm", "admissionReject"),
    "disengageRequest": ("disengageConfirm", "disengageReject"),
    "locationRequest": ("locationConfirm", "locationReject"),
    "infoRequestResponse": ("infoRequestAck", "infoRequestNak"),
    "resourcesAvailableIndicate": ("resourcesAvailableConfirm",),
    "unregistrationRequest": ("unregistrationConfirm", "unregistrationReject"),
}


class Run:
    def __init__(self, args, gk: Gatekeeper) -> None:
        self.args = args
        self.gk = gk
        self.rng = random.Random(args.seed)
        self.counts = {"sent": 0, "answers": 0, "valid sent": 0, "valid answered": 0,
                       "valid confirmed": 0, "resends": 0, "send failures": 0}
        self.unanswered: list[str] = []
        self.fuzz_links = [Link(gk.port) for _ in range(FUZZ_SOCKETS)]
        self.probe_links = [Link(gk.port) for _ in range(PROBES)]
        self.probes = [self._endpoint(link, f"probe{n}", f"5550{n:03d}")
                       for n, link in enumerate(self.probe_links)]

    @staticmethod
    def _endpoint(link: Link, name: str, digits: str) -> FakeEndpoint:
        return FakeEndpoint([name, digits], signal_address=(link.address[0], 20000 + link.address[1] % 40000),
                            ras_address=link.address)

    # -- a valid request and its answer -----------------------------------------------------

    def ask(self, link: Link, endpoint: FakeEndpoint, data: bytes, kind: str) -> ras.RasPdu | None:
        """Send a valid request, wait for its answer (resending); None when none came."""
        seq = ras.parse(data).seq
        self.counts["valid sent"] += 1
        for attempt in range(RESENDS + 1):
            if attempt:
                self.counts["resends"] += 1
            if not link.send(data):
                self.counts["send failures"] += 1
            deadline = time.monotonic() + WAIT
            while (remaining := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([link.sock], [], [], remaining)
                if not ready:
                    break
                for reply in link.drain():
                    self.counts["answers"] += 1
                    try:
                        pdu = endpoint.read(reply)
                    except DecodeError:
                        continue
                    if pdu.seq == seq and pdu.kind in REPLIES[kind]:
                        self.counts["valid answered"] += 1
                        if pdu.kind.endswith("Confirm") or pdu.kind == "infoRequestAck":
                            self.counts["valid confirmed"] += 1
                        return pdu
        self.unanswered.append(f"{kind} seq {seq} from {link.address}")
        return None

    def register(self, link: Link, endpoint: FakeEndpoint) -> bool:
        pdu = self.ask(link, endpoint, endpoint.rrq(), "registrationRequest")
        return pdu is not None and pdu.kind == "registrationConfirm"

    def valid_request(self, index: int) -> None:
        n = index % PROBES
        link, endpoint = self.probe_links[n], self.probes[n]
        if endpoint.endpoint_id is None and not self.register(link, endpoint):
            return
        step = index // PROBES % 6
        if step == 0:
            pdu = self.ask(link, endpoint, endpoint.rrq(keepalive=True), "registrationRequest")
            if pdu is not None and pdu.kind == "registrationReject":
                endpoint.endpoint_id = None        # the fuzz may have unregistered it: again
        elif step == 1:
            self.ask(link, endpoint, endpoint.grq(), "gatekeeperRequest")
        elif step == 2:
            callee = self.probes[(n + 1) % PROBES]
            pdu = self.ask(link, endpoint, endpoint.arq([callee.aliases[0]]), "admissionRequest")
            call_id = list(endpoint.calls)[-1]
            if pdu is not None and pdu.kind == "admissionConfirm":
                self.ask(link, endpoint, endpoint.drq(call_id), "disengageRequest")
            endpoint.calls.pop(call_id, None)
        elif step == 3:
            self.ask(link, endpoint, endpoint.lrq([self.probes[(n + 2) % PROBES].aliases[1]]),
                     "locationRequest")
        elif step == 4:
            self.ask(link, endpoint, endpoint.irr(need_response=True), "infoRequestResponse")
        else:
            self.ask(link, endpoint, endpoint.rai(False), "resourcesAvailableIndicate")

    # -- the fuzz ---------------------------------------------------------------------------

    def corpus(self) -> list[bytes]:
        corpus = real_vectors() + our_encodings() + crafted()
        # Endpoints registered from the fuzzing sockets: their own requests go in the corpus.
        for n, link in enumerate(self.fuzz_links):
            ep = self._endpoint(link, f"fuzz{n}", f"6660{n:03d}")
            if not self.register(link, ep):
                continue
            other = self.probes[n % PROBES]
            pdu = self.ask(link, ep, ep.arq([other.aliases[0]]), "admissionRequest")
            requests = [ep.grq(), ep.rrq(), ep.rrq(keepalive=True), ep.rrq(lightweight=True),
                        ep.arq([other.aliases[1]]), ep.lrq([other.aliases[0]]),
                        ep.irr(need_response=True), ep.rai(), ep.urq()]
            if pdu is not None and pdu.kind == "admissionConfirm":
                call_id = list(ep.calls)[-1]
                requests += [ep.brq(call_id, 640), ep.drq(call_id),
                             ep.arq([], answer_call=True, call_id=call_id)]
            corpus += requests * 2
        return corpus

    def fuzz(self) -> None:
        corpus = self.corpus()
        self.corpus_size = len(corpus)
        rng = self.rng
        count, batch = self.args.count, self.args.batch
        progress = max(count // 10, 1)
        started = time.monotonic()
        self.fuzz_started = started
        for index in range(count):
            data = mutate(rng.choice(corpus), rng, corpus) if rng.random() < 0.95 \
                else rng.choice(corpus)
            if not data:
                data = b"\x00"
            if rng.choice(self.fuzz_links).send(data):
                self.counts["sent"] += 1
            else:
                self.counts["send failures"] += 1
            if index % batch == batch - 1:
                for link in self.fuzz_links:
                    self.counts["answers"] += len(link.drain())
                self.valid_request(index // batch)
            if index % progress == progress - 1:
                print(f"  {index + 1:>9,} sent, {time.monotonic() - started:6.1f} s", flush=True)
            if not self.gk.alive():
                print("the gatekeeper died", flush=True)
                break
        self.fuzz_seconds = time.monotonic() - started
        time.sleep(0.5)
        for link in self.fuzz_links:
            self.counts["answers"] += len(link.drain())


def read_log(path: Path) -> tuple[int, int, int, int]:
    """Bytes, lines, tracebacks and critical lines of the gatekeeper's log."""
    data = path.read_bytes()
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    tracebacks = text.count("Traceback (most recent call last)")
    critical = sum("#critical]" in line for line in lines)
    return len(data), len(lines), tracebacks, critical


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500_000, help="mutated datagrams to send")
    parser.add_argument("--seed", type=int, default=0x4655_5A5A)
    parser.add_argument("--batch", type=int, default=32,
                        help="mutated datagrams between two valid requests")
    parser.add_argument("--config", help="a configuration file for the gatekeeper")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and log")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fuzz-ras-"))
    gk = Gatekeeper(workdir, args.config)
    started = time.monotonic()
    try:
        run = Run(args, gk)
        rss_start = gk.status("VmRSS")
        for link, probe in zip(run.probe_links, run.probes):
            run.register(link, probe)
        rss_before = gk.status("VmRSS")
        cpu_before, drops_before = gk.cpu(), gk.drops()
        log_before = read_log(gk.log)
        run.fuzz()
        elapsed = run.fuzz_seconds
        alive = gk.alive()
        rss_after = gk.status("VmRSS") if alive else float("nan")
        hwm = gk.status("VmHWM") if alive else float("nan")
        cpu = gk.cpu() - cpu_before if alive else float("nan")
        drops = gk.drops() - drops_before if alive else -1
    finally:
        code = gk.stop()
    log_bytes, log_lines, tracebacks, critical = read_log(gk.log)
    counts = run.counts
    rows = [
        ("mutated datagrams sent", f"{counts['sent']:,}"),
        ("  corpus they were made from", f"{run.corpus_size:,}"),
        ("answers received (to anything)", f"{counts['answers']:,}"),
        ("valid requests sent", f"{counts['valid sent']:,}"),
        ("valid requests answered", f"{counts['valid answered']:,}"),
        ("  of which confirmed", f"{counts['valid confirmed']:,}"),
        ("  resends needed", f"{counts['resends']:,}"),
        ("kernel drops at the RAS socket", f"{drops:,}"),
        ("send failures (generator side)", f"{counts['send failures']:,}"),
        ("tracebacks in the log", f"{tracebacks:,}"),
        ("critical lines in the log", f"{critical:,}"),
        ("log bytes / lines (whole run)", f"{log_bytes:,} / {log_lines:,}"),
        ("log bytes during the fuzz", f"{log_bytes - log_before[0]:,}"),
        ("VmRSS at start / before / after (MiB)",
         f"{rss_start:.1f} / {rss_before:.1f} / {rss_after:.1f}"),
        ("VmHWM after (MiB)", f"{hwm:.1f}"),
        ("gatekeeper CPU during the fuzz (s)", f"{cpu:.1f}"),
        ("wall time of the fuzz loop (s)", f"{elapsed:.1f}"),
        ("datagrams/s (mutated + valid)",
         f"{(counts['sent'] + counts['valid sent'] + counts['resends']) / elapsed:,.0f}"),
        ("gatekeeper alive at the end / exit status", f"{alive} / {code}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\nfuzz_ras: seed {args.seed:#x}, batch {args.batch}, "
          f"total {time.monotonic() - started:.1f} s")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>20}")
    ok = (not run.unanswered and tracebacks == 0 and critical == 0 and alive
          and counts["valid answered"] == counts["valid sent"])
    if run.unanswered:
        print("unanswered valid requests:", *run.unanswered[:10], sep="\n  ")
    if tracebacks or critical or args.keep:
        print(f"log kept: {gk.log}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
