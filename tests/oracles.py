"""Independent-decoder oracles for tests: write our bytes into a pcap file and let tshark decode it.

Not a test module. The packets are built here by hand (Ethernet + IPv4 + UDP/TCP, checksums
computed), so nothing in the pcap depends on the gatekeeper's own code except the payloads
under test:

* RAS: one UDP datagram per payload, destination port 1719 (tshark decodes it as H.225 RAS).
* Call signalling: one TCP segment per payload on a connection to port 1720, with consistent
  sequence and acknowledgement numbers (no handshake: tshark dissects TPKT/Q.931/H.225 without
  it). :func:`write_q931_pcap` adds the TPKT header itself.

Then :func:`run_tshark` gives the ``-V`` text, :func:`assert_no_malformed` checks it, and
:func:`tshark_fields` / :func:`tshark_pdml` extract decoded field values to compare with what
was encoded. tshark runs with a throw-away HOME so it writes nothing into the real one.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TSHARK = "tshark"

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header

IPPROTO_TCP = 6
IPPROTO_UDP = 17

RAS_PORT = 1719
CALL_SIGNALLING_PORT = 1720

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_PSH = 0x08
TCP_ACK = 0x10

Address = tuple[str, int]

DEFAULT_ENDPOINT: Address = ("192.0.2.10", 40000)
DEFAULT_GATEKEEPER_RAS: Address = ("192.0.2.1", RAS_PORT)
DEFAULT_GATEKEEPER_SIGNALLING: Address = ("192.0.2.1", CALL_SIGNALLING_PORT)

_MALFORMED_MARKERS = ("Malformed", "Expert Info (Error", "[Dissector bug")

#: Extra tshark arguments that make it verify our IPv4/UDP/TCP checksums (a bad one is then an
#: "Expert Info (Error/Checksum)", which :func:`assert_no_malformed` catches).
CHECK_CHECKSUMS: tuple[str, ...] = ("-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                                    "-o", "tcp.check_checksum:TRUE")


def has_tshark() -> bool:
    """True if the tshark binary is on PATH."""
    return shutil.which(TSHARK) is not None


requires_tshark = pytest.mark.skipif(
    not has_tshark(),
    reason="tshark not installed: the independent decoder oracle tests need the Debian package tshark",
)


# --- packet building ----------------------------------------------------------------------------

def _internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_octets(address: str) -> bytes:
    parts = [int(part) for part in address.split(".")]
    if len(parts) != 4 or not all(0 <= part <= 255 for part in parts):
        raise ValueError(f"not an IPv4 address: {address!r}")
    return bytes(parts)


def ipv4_packet(src_ip: str, dst_ip: str, protocol: int, payload: bytes, identification: int = 0) -> bytes:
    """An IPv4 packet (no options, DF set, TTL 64, header checksum computed) around ``payload``."""
    total_length = 20 + len(payload)
    if total_length > 0xFFFF:
        raise ValueError("IPv4 packet too large")
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total_length, identification & 0xFFFF, 0x4000, 64, protocol, 0,
        _ip_octets(src_ip), _ip_octets(dst_ip),
    )
    checksum = _internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def _pseudo_header(src_ip: str, dst_ip: str, protocol: int, length: int) -> bytes:
    return _ip_octets(src_ip) + _ip_octets(dst_ip) + struct.pack("!BBH", 0, protocol, length)


def udp_packet(src: Address, dst: Address, payload: bytes, identification: int = 0) -> bytes:
    """An IPv4 + UDP packet from ``src`` to ``dst`` (each ``(ip, port)``), checksum computed."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", src[1], dst[1], length, 0)
    checksum = _internet_checksum(_pseudo_header(src[0], dst[0], IPPROTO_UDP, length) + header + payload)
    header = header[:6] + struct.pack("!H", checksum or 0xFFFF)
    return ipv4_packet(src[0], dst[0], IPPROTO_UDP, header + payload, identification)


def tcp_packet(src: Address, dst: Address, seq: int, ack: int, payload: bytes = b"",
               flags: int = TCP_PSH | TCP_ACK, window: int = 65535, identification: int = 0) -> bytes:
    """An IPv4 + TCP segment (20-byte header, no options), checksum computed."""
    header = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         5 << 4, flags, window, 0, 0)
    segment_length = len(header) + len(payload)
    checksum = _internet_checksum(
        _pseudo_header(src[0], dst[0], IPPROTO_TCP, segment_length) + header + payload)
    header = header[:16] + struct.pack("!H", checksum) + header[18:]
    return ipv4_packet(src[0], dst[0], IPPROTO_TCP, header + payload, identification)


@dataclass
class TcpConversation:
    """Builds the IPv4 packets of one TCP connection with consistent sequence numbers.

    ``send`` appends one segment carrying ``payload`` in either direction, acknowledging
    everything the other side sent so far. With ``handshake`` a SYN / SYN-ACK / ACK comes first.
    """

    client: Address = DEFAULT_ENDPOINT
    server: Address = DEFAULT_GATEKEEPER_SIGNALLING
    handshake: bool = False
    client_seq: int = 1000
    server_seq: int = 5000
    packets: list[bytes] = field(default_factory=list)
    _next_id: int = field(default=1, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.handshake:
            self._emit(True, b"", TCP_SYN, ack=0)
            self.client_seq += 1
            self._emit(False, b"", TCP_SYN | TCP_ACK)
            self.server_seq += 1
            self._emit(True, b"", TCP_ACK)

    def send(self, payload: bytes, from_client: bool = True) -> bytes:
        """Add a data segment and return its packet."""
        packet = self._emit(from_client, payload, TCP_PSH | TCP_ACK)
        if from_client:
            self.client_seq += len(payload)
        else:
            self.server_seq += len(payload)
        return packet

    def _emit(self, from_client: bool, payload: bytes, flags: int, ack: int | None = None) -> bytes:
        if from_client:
            src, dst, seq, default_ack = self.client, self.server, self.client_seq, self.server_seq
        else:
            src, dst, seq, default_ack = self.server, self.client, self.server_seq, self.client_seq
        packet = tcp_packet(src, dst, seq, default_ack if ack is None else ack, payload, flags,
                            identification=self._next_id)
        self._next_id += 1
        self.packets.append(packet)
        return packet


def ethernet_frame(ip_packet: bytes, src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
                   dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02") -> bytes:
    """An Ethernet II frame (EtherType IPv4) around an IPv4 packet; locally administered MACs."""
    return dst_mac + src_mac + b"\x08\x00" + ip_packet


def tpkt(payload: bytes) -> bytes:
    """RFC 1006 TPKT header + payload, built here independently of gatekeeper.h225.tpkt."""
    return struct.pack("!BBH", 3, 0, len(payload) + 4) + payload


# --- pcap files --------------------------------------------------------------------------------

def write_pcap(path: str | os.PathLike[str], ip_packets: Iterable[bytes], linktype: int = LINKTYPE_ETHERNET,
               start_time: int = 1_700_000_000) -> Path:
    """Write IPv4 packets to a classic (libpcap 2.4, microsecond) pcap file, one every 10 ms.

    With ``LINKTYPE_ETHERNET`` each packet is wrapped in an Ethernet frame; with ``LINKTYPE_RAW``
    the IPv4 packets are written as they are.
    """
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        raise ValueError(f"unsupported link type {linktype}")
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for index, packet in enumerate(ip_packets):
        frame = ethernet_frame(packet) if linktype == LINKTYPE_ETHERNET else packet
        micros = index * 10_000
        chunks.append(struct.pack("<IIII", start_time + micros // 1_000_000, micros % 1_000_000,
                                  len(frame), len(frame)))
        chunks.append(frame)
    path = Path(path)
    path.write_bytes(b"".join(chunks))
    return path


def write_udp_pcap(path: str | os.PathLike[str], datagrams: Iterable[bytes],
                   src: Address = DEFAULT_ENDPOINT, dst: Address = DEFAULT_GATEKEEPER_RAS,
                   linktype: int = LINKTYPE_ETHERNET) -> Path:
    """Write each payload as one UDP datagram from ``src`` to ``dst`` (default: to port 1719, RAS)."""
    packets = [udp_packet(src, dst, datagram, identification=index + 1)
               for index, datagram in enumerate(datagrams)]
    return write_pcap(path, packets, linktype)


def write_tcp_pcap(path: str | os.PathLike[str], payloads: Iterable[bytes | tuple[bool, bytes]],
                   client: Address = DEFAULT_ENDPOINT, server: Address = DEFAULT_GATEKEEPER_SIGNALLING,
                   handshake: bool = False, linktype: int = LINKTYPE_ETHERNET) -> Path:
    """Write each payload as one TCP segment of a single connection (default: to port 1720).

    An item is either the segment payload (sent by the client) or ``(from_client, payload)``.
    Payloads are written as given: frame them (see :func:`tpkt`) for call signalling.
    """
    conversation = TcpConversation(client=client, server=server, handshake=handshake)
    for item in payloads:
        from_client, payload = (True, item) if isinstance(item, (bytes, bytearray)) else item
        conversation.send(bytes(payload), from_client)
    return write_pcap(path, conversation.packets, linktype)


def write_q931_pcap(path: str | os.PathLike[str], messages: Iterable[bytes | tuple[bool, bytes]],
                    **kwargs: object) -> Path:
    """Write Q.931 messages as TPKT-framed TCP segments on port 1720, one message per segment.

    An item is a message (sent by the caller) or ``(from_caller, message)``; keyword arguments
    go to :func:`write_tcp_pcap`.
    """
    framed: list[tuple[bool, bytes]] = []
    for item in messages:
        from_client, message = (True, item) if isinstance(item, (bytes, bytearray)) else item
        framed.append((from_client, tpkt(bytes(message))))
    return write_tcp_pcap(path, framed, **kwargs)  # type: ignore[arg-type]


# --- running tshark ----------------------------------------------------------------------------

def _run(args: Sequence[str]) -> str:
    """Run tshark with a throw-away HOME/XDG dirs; return stdout, fail the test on errors."""
    with tempfile.TemporaryDirectory(prefix="tshark-home-") as home:
        env = dict(os.environ)
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"), LC_ALL="C.UTF-8")
        completed = subprocess.run([TSHARK, *args], capture_output=True, env=env, timeout=120,
                                   check=False)
    stderr = "\n".join(line for line in completed.stderr.decode("utf-8", "replace").splitlines()
                       if line.strip() and "Running as user" not in line)
    if completed.returncode != 0:
        raise AssertionError(f"tshark {' '.join(args)} exited {completed.returncode}: {stderr}")
    return completed.stdout.decode("utf-8", "replace")


def run_tshark(pcap_path: str | os.PathLike[str], extra_args: Sequence[str] = ()) -> str:
    """Return tshark's full packet-detail text (``-V``) for a pcap file (no name resolution)."""
    return _run(["-n", "-r", os.fspath(pcap_path), "-V", *extra_args])


def assert_no_malformed(text: str) -> None:
    """Fail if tshark's text reports a malformed packet, an expert error or a dissector bug."""
    for marker in _MALFORMED_MARKERS:
        index = text.find(marker)
        if index >= 0:
            start = max(0, index - 1500)
            raise AssertionError(f"tshark reports {marker!r}:\n...{text[start:index + 500]}...")


def tshark_fields(pcap_path: str | os.PathLike[str], fields: Sequence[str],
                  extra_args: Sequence[str] = ()) -> list[dict[str, list[str]]]:
    """Decode with ``-T fields`` and return, per packet, each field's values (every occurrence).

    Values are as tshark prints them in this mode (e.g. ``q931.message_type`` -> ``"5"``, see
    the tests for examples); a field absent from a packet maps to an empty list.
    """
    args = ["-n", "-r", os.fspath(pcap_path), "-T", "fields", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", "aggregator=\x1f", "-E", "quote=n"]
    for name in fields:
        args += ["-e", name]
    output = _run([*args, *extra_args])
    rows: list[dict[str, list[str]]] = []
    for line in output.splitlines():
        columns = line.split("\t")
        columns += [""] * (len(fields) - len(columns))
        rows.append({name: (value.split("\x1f") if value else []) for name, value in zip(fields, columns)})
    return rows


@dataclass(frozen=True)
class PdmlField:
    """One field of tshark's PDML output: ``show`` is the display value, ``value`` the raw hex."""

    name: str
    show: str
    value: str
    showname: str


def tshark_pdml(pcap_path: str | os.PathLike[str], extra_args: Sequence[str] = ()) -> list[list[PdmlField]]:
    """Decode with ``-T pdml`` and return, per packet, every named field in document order."""
    output = _run(["-n", "-r", os.fspath(pcap_path), "-T", "pdml", *extra_args])
    root = ElementTree.fromstring(output)
    packets: list[list[PdmlField]] = []
    for packet in root.iter("packet"):
        fields = [
            PdmlField(element.get("name", ""), element.get("show", ""), element.get("value", ""),
                      element.get("showname", ""))
            for element in packet.iter("field") if element.get("name")
        ]
        packets.append(fields)
    return packets


def pdml_values(packet: Sequence[PdmlField], name: str) -> list[str]:
    """The ``show`` values of every field called ``name`` in one PDML packet."""
    return [item.show for item in packet if item.name == name]
