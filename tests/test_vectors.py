"""Real datagrams from two independent H.323 stacks (tests/data/vectors/).

Every one must decode; the ooh323c ones must carry the values tshark read
from them (the decode files beside them, made by nobody here); the
H323Plus/GnuGk ones must re-encode to the very same bytes.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from pathlib import Path

import pytest

from gatekeeper.h225 import codec, ras

from testdata import H323PLUS_VECTORS as H323PLUS
from testdata import OOH323C_VECTORS as OOH

ALL_FILES = sorted(OOH.glob("*.hex")) + sorted(H323PLUS.glob("*.hex"))


def load(path: Path) -> bytes:
    return bytes.fromhex("".join(path.read_text().split()))


def test_vectors_are_present():
    assert len(list(OOH.glob("*.hex"))) >= 20
    assert len(list(H323PLUS.glob("*.hex"))) >= 60


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_vector_decodes_to_its_named_message(path):
    kind, value = codec.decode_ras(load(path))
    short = {
        "GRQ": "gatekeeperRequest", "GCF": "gatekeeperConfirm", "RRQ": "registrationRequest",
        "RCF": "registrationConfirm", "ARQ": "admissionRequest", "ACF": "admissionConfirm",
        "ARJ": "admissionReject", "DRQ": "disengageRequest", "DCF": "disengageConfirm",
        "URQ": "unregistrationRequest", "UCF": "unregistrationConfirm",
    }
    named = next(short[part.split("-")[0]] for part in path.stem.split("_")
                 if part.split("-")[0] in short)
    assert kind == named
    typed = ras.read((kind, value))
    assert typed.kind == kind and typed.seq == value["requestSeqNum"]


@pytest.mark.parametrize("path", sorted(H323PLUS.glob("*.hex")), ids=lambda p: p.stem)
def test_h323plus_and_gnugk_datagrams_reencode_byte_for_byte(path):
    data = load(path)
    assert codec.encode_ras(codec.decode_ras(data)) == data


# --- tshark's decode of the ooh323c runs --------------------------------------------------

_BITS = re.compile(r"^[01.]{4} [01.]{4} ")
_FIELDS = {"requestSeqNum", "ip", "port", "dialledDigits", "h323-ID", "timeToLive",
           "keepAlive", "endpointIdentifier", "answerCall", "gatekeeperIdentifier",
           "discoveryComplete", "callReferenceValue", "bandWidth", "protocolIdentifier"}


class Node:
    def __init__(self, label: str, value: str | None, depth: int):
        self.label, self.value, self.depth = label, value, depth
        self.children: list[Node] = []

    def leaves(self, names=_FIELDS):
        for child in self.children:
            if child.label in names and child.value is not None:
                yield child.label, child.value
            yield from child.leaves(names)

    def find(self, label):
        for child in self.children:
            if child.label == label:
                return child
            found = child.find(label)
            if found is not None:
                return found
        return None


def parse_frames(text: str) -> list[tuple[int, Node]]:
    """(UDP payload length, RAS tree) for every frame of a tshark -V text."""
    frames = []
    for chunk in text.split("\nFrame ")[0:]:
        length_match = re.search(r"UDP payload \((\d+) bytes\)", chunk)
        ras_start = chunk.find("H.225.0 RAS\n")
        if not length_match or ras_start < 0:
            continue
        root = Node("ras", None, -1)
        stack = [root]
        for line in chunk[ras_start:].splitlines()[1:]:
            if not line.strip() or line.lstrip().startswith("["):
                continue
            depth = len(line) - len(line.lstrip(" "))
            body = _BITS.sub("", line.strip())
            label, sep, value = body.partition(": ")
            node = Node(label.strip(), value.strip() if sep else None, depth)
            while stack[-1].depth >= depth:
                stack.pop()
            stack[-1].children.append(node)
            stack.append(node)
        frames.append((int(length_match.group(1)), root))
    return frames


def our_leaves(value, names=_FIELDS, label=None):
    """The same (name, text) pairs, read from our decoded value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from our_leaves(item, names, key)
    elif isinstance(value, list):
        for item in value:
            yield from our_leaves(item, names, label)
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        yield from our_leaves(value[1], names, value[0])
    elif label in names:
        if label == "ip":
            yield label, str(ipaddress.ip_address(bytes(value)))
        elif label == "protocolIdentifier":
            yield label, value
        else:
            yield label, str(value)


def _normal(pairs):
    result = Counter()
    for name, text in pairs:
        if name == "protocolIdentifier":
            text = text.split(" ")[0]
        result[(name, text)] += 1
    return result


OOH_RUNS = ["gk2", "simple1"]


@pytest.mark.parametrize("run", OOH_RUNS)
def test_ooh323c_vectors_carry_the_values_tshark_decoded(run):
    frames = parse_frames((OOH / f"{run}.tshark-V.txt").read_text())
    files = sorted(OOH.glob(f"ep_{run}_*.hex"))
    assert files
    unmatched = list(frames)
    for path in files:
        data = load(path)
        kind, value = codec.decode_ras(data)
        ours = _normal(our_leaves(value))
        candidates = [(n, tree) for n, tree in unmatched
                      if n == len(data) and tree.find(kind) is not None
                      and _normal(tree.leaves()) == ours]
        assert candidates, f"{path.name}: no tshark frame with the same values {sorted(ours)}"
        unmatched.remove(candidates[0])
        tree = candidates[0][1]
        # destinationInfo: the dialled alias, in the same place
        if "destinationInfo" in value:
            theirs = _normal(tree.find("destinationInfo").leaves())
            assert theirs == _normal(our_leaves(value["destinationInfo"]))


def test_ooh323c_flow_reads_as_the_wire_notes_describe():
    rrq = ras.read(codec.decode_ras(load(OOH / "ep_gk2_02_RRQ_bob.hex")))
    assert rrq.discovery_complete and rrq.time_to_live == 300 and not rrq.keep_alive
    assert rrq.call_signal_addresses == (("127.0.0.1", 1820),)
    assert [str(a) for a in rrq.aliases] == ["2002:dialedDigits", "bob:h323_ID"]
    call = ras.read(codec.decode_ras(load(OOH / "ep_gk2_05_ARQ-call_alice.hex")))
    assert not call.answer_call and call.dest_call_signal_address is None
    assert [str(a) for a in call.destination_info] == ["bob:h323_ID"]
    assert call.bandwidth == 100000 and call.call_model == "direct"
    answer = ras.read(codec.decode_ras(load(OOH / "ep_gk2_06_ARQ-answer_bob.hex")))
    assert answer.answer_call and answer.dest_call_signal_address == ("127.0.0.1", 1820)
    assert answer.call_id == call.call_id
