"""fastper against plain asn1tools: the same bytes, values and refusals.

The reference is the library itself compiled from the same modules, with only
``codec``'s fixes (A1-A3) installed, encoding the way ``codec`` used to:
asn1tools' type checker and constraints checker, then its encoder.
"""

from __future__ import annotations

import copy
import functools
import random
from pathlib import Path

import asn1tools
import pytest
from asn1tools.codecs import per

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec, fastper, ras

import asn1_values
from asn1_values import compiled, full_value, make_value, ras_alternatives
from testdata import VECTORS

VECTOR_FILES = sorted(VECTORS.glob("*/*.hex"))
RAS_KINDS = ras_alternatives()


def load(path: Path) -> bytes:
    return bytes.fromhex("".join(path.read_text().split()))


# Characters for strings of a big alphabet (the BMP): asn1_values lists the
# whole alphabet for every such string it makes (~10 s per sweep of full
# RAS messages); here they draw from this sample of it instead.
_SAMPLE = "abcXYZ 0123-_@.\u00e9\u00fc\u20ac\u03a9\u0436\u4e2d"


@pytest.fixture(scope="module", autouse=True)
def quick_strings():
    original = asn1_values._string
    small: dict[int, per.PermittedAlphabet] = {}

    def _string(node, rng, full):
        alphabet = node.permitted_alphabet
        if alphabet is not None and len(getattr(alphabet, "encode_map", ())) > 200:
            if id(alphabet) not in small:
                codes = [ord(c) for c in _SAMPLE if ord(c) in alphabet.encode_map]
                small[id(alphabet)] = per.PermittedAlphabet(
                    {c: c for c in codes}, {c: c for c in codes})
            node = copy.copy(node)
            node.permitted_alphabet = small[id(alphabet)]
        return original(node, rng, full)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asn1_values, "_string", _string)
        yield


@functools.lru_cache(maxsize=None)
def _ras(kind: str, seed: int, full: bool):
    return (asn1_values.full_ras if full else asn1_values.minimal_ras)(kind, seed)


def full_ras(kind, seed):
    return copy.deepcopy(_ras(kind, seed, True))


def minimal_ras(kind, seed):
    return copy.deepcopy(_ras(kind, seed, False))


@pytest.fixture(scope="session")
def reference():
    spec = asn1tools.compile_files([str(p) for p in codec.ASN1_FILES], "per")
    codec._install_fixes(spec)
    return spec


def reference_encode(spec, type_name, value) -> bytes:
    """What codec.encode did before fastper."""
    try:
        return bytes(spec.encode(type_name, value, check_types=True, check_constraints=True))
    except Exception as error:
        if codec.UNKNOWN_ALTERNATIVE_PREFIX not in str(error):
            raise
    return bytes(spec.encode(type_name, value, check_types=False))


def outcome(function, *args):
    """('ok', result) or ('error', None): whether it refused, not how."""
    try:
        return ("ok", function(*args))
    except (Exception, RecursionError):
        return ("error", None)


def assert_same(ours, theirs, path="value"):
    """Equal, and of the same Python types all the way down."""
    assert type(ours) is type(theirs), f"{path}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(ours, dict):
        assert list(ours) == list(theirs), path
        for key in ours:
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), path
        for index, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert ours == theirs, path


def check_value(reference, type_name, value):
    ours = codec.encode(type_name, value)
    theirs = reference_encode(reference, type_name, value)
    assert ours == theirs
    decoded = codec.decode(type_name, ours)
    assert_same(decoded, reference.decode(type_name, theirs))
    assert decoded == value


# --- (a) every RAS message, many seeds -------------------------------------------------------

@pytest.mark.parametrize("kind", RAS_KINDS)
def test_ras_messages_encode_and_decode_as_asn1tools_does(reference, kind):
    for seed in range(8):
        check_value(reference, "RasMessage", full_ras(kind, seed))
    for seed in range(3):
        check_value(reference, "RasMessage", minimal_ras(kind, seed))


def test_messages_built_by_ras_encode_as_asn1tools_does(reference):
    messages = [
        ras.rcf(1, [("10.0.0.1", 1720)], "1_endp", "GK", aliases=[ras.h323_id("bob")],
                time_to_live=60, supports_additive=True),
        ras.acf(2, 640, ("10.0.0.2", 1720), routed=True, destination_info=[ras.dialled_digits("2002")],
                destination_type="terminal"),
        ras.rrj(3, "securityDenial"), ras.arj(4, "securityDenial"),
        ras.gcf(5, "GK", ("10.0.0.1", 1719)), ras.ucf(6), ras.dcf(7),
        ras.unknown_message_response(8, b"\x01\x02"),
    ]
    for message in messages:
        check_value(reference, "RasMessage", message)


# --- (b) H323-UserInformation ----------------------------------------------------------------

def uuie_bodies():
    choice = compiled("H323-UU-PDU").root_members[0]
    return list(choice.root_index_to_member.values()) + list(choice.additions_index_to_member.values())


@pytest.mark.parametrize("body", [m.name for m in uuie_bodies()])
def test_uuie_encode_and_decode_as_asn1tools_does(reference, body):
    member = next(m for m in uuie_bodies() if m.name == body)
    for seed in range(6):
        for full in (True, False):
            rng = random.Random(seed)
            value = make_value(compiled("H323-UserInformation"), rng, full)
            value["h323-uu-pdu"]["h323-message-body"] = (body, make_value(member, rng, full, 2))
            check_value(reference, "H323-UserInformation", value)


@pytest.mark.parametrize("type_name", ["EndpointType", "TransportAddress", "AliasAddress",
                                       "CryptoH323Token", "ClearToken", "GenericData",
                                       "FeatureDescriptor", "DataProtocolCapability"])
def test_other_types_encode_and_decode_as_asn1tools_does(reference, type_name):
    for seed in range(8):
        check_value(reference, type_name, full_value(type_name, seed))


# --- (c) real datagrams ----------------------------------------------------------------------

@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vectors_decode_and_reencode_as_asn1tools_does(reference, path):
    data = load(path)
    ours = codec.decode_ras(data)
    assert_same(ours, reference.decode("RasMessage", data))
    assert codec.encode_ras(ours) == reference_encode(reference, "RasMessage", ours)


def test_large_messages_encode_and_decode_as_asn1tools_does(reference):
    # Long lists and strings take the rare paths (two-octet lengths), and
    # the Decoder/Encoder trim and flush their integers.
    kind, fields = load_vector_value("h323plus-gnugk/03_ep_RRQ_34991.hex")
    aliases = [("h323-ID", "x" * 20), ("dialledDigits", "1234567890"), ("url-ID", "http://a/" + "b" * 150)]
    for count, size in ((130, 20000), (200, 40000), (4, 300)):
        value = dict(fields, terminalAlias=aliases * (count // 3),
                     nonStandardData={"nonStandardIdentifier": ("object", "1.2.3.4"),
                                      "data": bytes(range(256)) * (size // 256)})
        check_value(reference, "RasMessage", (kind, value))


def load_vector_value(name):
    return codec.decode_ras(load(VECTORS / name))


# --- (d) truncated and garbage input ---------------------------------------------------------

def _both_decode(reference, type_name, data):
    theirs = outcome(reference.decode, type_name, data)
    try:
        ours = ("ok", codec.decode(type_name, data))
    except DecodeError:
        ours = ("error", None)
    # (anything else escaping codec.decode fails the test here)
    assert ours[0] == theirs[0], data.hex()
    if ours[0] == "ok":
        assert_same(ours[1], theirs[1])


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_truncated_and_damaged_vectors_fail_or_decode_as_asn1tools_does(reference, path):
    data = load(path)
    for end in range(1, len(data)):
        _both_decode(reference, "RasMessage", data[:end])
    rng = random.Random(path.name)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        _both_decode(reference, "RasMessage", bytes(damaged))


def test_random_garbage_fails_or_decodes_as_asn1tools_does(reference):
    rng = random.Random(7)
    for size in list(range(1, 40)) * 15:
        data = bytes(rng.randrange(256) for _ in range(size))
        _both_decode(reference, "RasMessage", data)
        _both_decode(reference, "H323-UserInformation", data)


def test_garbage_raises_only_decode_error():
    for data in (b"\x00", b"\xff" * 3, b"\x0e\xc0", bytes(200), b"\xff" * 1000, b"\x80" * 50):
        for type_name in ("RasMessage", "H323-UserInformation"):
            try:
                codec.decode(type_name, data)
            except DecodeError:
                pass


# --- refusals on encode: the same values refused -----------------------------------------------

def _bad_values(node, value, rng):
    """Values that are wrong for ``node`` in some way (type, range, size, alphabet)."""
    bad = [object(), None, "x", 1.5, [value], (value,)]
    if isinstance(node, per.Integer):
        low = node.minimum if node.minimum is not None else -10
        high = node.maximum if node.maximum is not None else 10
        bad += [low - 1, high + 1, str(value), True, -(2 ** 40), 2 ** 70]
    elif isinstance(node, per.Boolean):
        bad += [1, 0, "true"]
    elif isinstance(node, per.Null):
        bad += [0, False, b""]
    elif isinstance(node, per.OctetString):
        low = node.minimum or 0
        high = node.maximum if node.maximum is not None else low + 3
        bad += [bytes(max(low - 1, 0)), bytes(high + 1), bytearray(value), value.decode("latin-1"),
                memoryview(value)]
    elif isinstance(node, per.KnownMultiplierStringType):
        low = node.minimum or 0
        high = node.maximum if node.maximum is not None else low + 3
        sample = value[:1] or "1"
        bad += [sample * max(low - 1, 0), sample * (high + 1), value.encode(), value + "\x7f",
                value + "é", value + "\u20ac", value + "\U0001f600", value + "\ud800", value + "a",
                value + "Z", value + " "]
    elif isinstance(node, per.ArrayType):
        low = node.minimum or 0
        high = node.maximum if node.maximum is not None else low + 3
        bad += [value[:max(low - 1, 0)], value * (high + 1) if value else [None] * (high + 1),
                tuple(value), {}]
    elif isinstance(node, per.Choice):
        bad += [("nonexistent", value[1]), [value[0], value[1]], (value[0],),
                (value[0], value[1], 1), (1, value[1])]
    elif isinstance(node, per.MembersType):
        if value:
            name = rng.choice(list(value))
            bad.append({k: v for k, v in value.items() if k != name})
        bad += [list(value.items()), dict(value, unknownMember=1)]
    elif isinstance(node, per.BitString):
        bad += [(value[0], len(value[0]) * 8 + 1), (bytes(value[0]), value[1]), value[0]]
    elif isinstance(node, per.ObjectIdentifier):
        bad += ["1.2.x", "", "1", 5, "0.0.8.2250.0.99999999999"]
    elif isinstance(node, per.Enumerated):
        bad += ["notAnEnumValue", 0]
    return bad


def _paths(node, value, path=()):
    """(path, node, value) of every component of ``value``."""
    if isinstance(node, per.Recursive):
        node = node._inner
    yield path, node, value
    if isinstance(node, per.MembersType):
        members = list(node.root_members) + [
            m for a in node.additions or () for m in (a.root_members if isinstance(a, per.AdditionGroup) else [a])]
        for member in members:
            if member.name in value:
                yield from _paths(member, value[member.name], path + (member.name,))
    elif isinstance(node, per.Choice):
        members = dict((m.name, m) for m in node.root_index_to_member.values())
        members.update((m.name, m) for m in (node.additions_index_to_member or {}).values())
        if value[0] in members:
            yield from _paths(members[value[0]], value[1], path + (1,))
    elif isinstance(node, per.ArrayType):
        for index, entry in enumerate(value):
            yield from _paths(node.element_type, entry, path + (index,))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return dict(value, **{head: _replace(value[head], rest, new)})
    if isinstance(value, tuple):
        return (value[0], _replace(value[1], rest, new))
    copied = list(value)
    copied[head] = _replace(value[head], rest, new)
    return copied


def _same_refusals(reference, type_name, top, value, rng, limit):
    components = list(_paths(top, value))
    for path, node, part in rng.sample(components, min(limit, len(components))):
        for bad in _bad_values(node, part, rng):
            changed = _replace(value, path, bad)
            theirs = outcome(reference_encode, reference, type_name, changed)
            try:
                ours = ("ok", codec.encode(type_name, changed))
            except EncodeError:
                ours = ("error", None)
            assert ours == theirs, (path, bad)


def _smaller_full_ras(kind, seed):
    """A RAS message filled in to a smaller depth than full_ras (quicker to encode)."""
    node = compiled("RasMessage")
    index = node.root_name_to_index.get(kind)
    member = (node.root_index_to_member[index] if index is not None
              else node.additions_index_to_member[node.additions_name_to_index[kind]])
    return (kind, make_value(member, random.Random(seed), True, 4))


@pytest.mark.parametrize("kind", RAS_KINDS)
def test_encode_refuses_what_asn1tools_checkers_refused(reference, kind):
    rng = random.Random(kind)
    top = compiled("RasMessage")
    _same_refusals(reference, "RasMessage", top, _smaller_full_ras(kind, 0), rng, 30)
    _same_refusals(reference, "RasMessage", top, minimal_ras(kind, 0), rng, 10)


def test_uuie_encode_refuses_what_asn1tools_checkers_refused(reference):
    rng = random.Random(3)
    top = compiled("H323-UserInformation")
    for body in uuie_bodies():
        value = make_value(top, random.Random(1), True, 3)
        value["h323-uu-pdu"]["h323-message-body"] = (body.name, make_value(body, random.Random(2), True, 4))
        _same_refusals(reference, "H323-UserInformation", top, value, rng, 20)


def test_unknown_alternative_is_relayed_and_the_rest_still_checked():
    data = bytes.fromhex("9403aabbcc")
    assert codec.encode_ras(codec.decode_ras(data)) == data
    kind, fields = ras.rcf(1, [("10.0.0.1", 1720)], "1_endp", "GK")
    fields["callSignalAddress"] = [("?extension-9", b"\x01"), ("ipAddress", {"ip": b"\x01\x02\x03\x04", "port": 1})]
    codec.encode_ras((kind, fields))
    fields["callSignalAddress"][1][1]["port"] = 70000
    with pytest.raises(EncodeError):
        codec.encode_ras((kind, fields))


# --- the Decoder and Encoder primitives against asn1tools' ----------------------------------------

def test_decoder_primitives_read_as_asn1tools_reads():
    rng = random.Random(11)
    for _ in range(400):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        ours, theirs = fastper.Decoder(data), per.Decoder(bytearray(data))
        for _ in range(12):
            operation = rng.choice(["bit", "bits", "int", "align", "length", "small", "skip",
                                    "bytes", "constrained"])
            size = rng.randrange(0, 20)
            calls = {
                "bit": ("read_bit", ()), "bits": ("read_bits", (size,)),
                "int": ("read_non_negative_binary_integer", (size,)), "align": ("align", ()),
                "length": ("read_length_determinant", ()),
                "small": ("read_normally_small_non_negative_whole_number", ()),
                "skip": ("skip_bits", (size,)), "bytes": ("read_bytes", (size // 4,)),
                "constrained": ("read_constrained_whole_number",
                                (3, 3 + rng.choice([0, 1, 7, 254, 255, 256, 1000, 65535, 70000]), size)),
            }
            name, arguments = calls[operation]
            a = outcome(getattr(ours, name), *arguments)
            b = outcome(getattr(theirs, name), *arguments)
            assert a == b, (data.hex(), name, arguments)
            if a[0] == "error":
                break
            assert ours.number_of_bits == theirs.number_of_bits
            assert ours.number_of_read_bits() == theirs.number_of_read_bits()


def test_encoder_primitives_write_as_asn1tools_writes():
    rng = random.Random(12)
    for _ in range(300):
        ours, theirs = fastper.Encoder(), per.Encoder()
        for _ in range(rng.randrange(1, 15)):
            operation = rng.randrange(8)
            if operation == 0:
                arguments = ("append_bit", rng.randrange(2))
            elif operation == 1:
                size = rng.randrange(0, 40)
                arguments = ("append_non_negative_binary_integer", rng.getrandbits(size) if size else 0, size)
            elif operation == 2:
                arguments = ("align",)
            elif operation == 3:
                arguments = ("append_length_determinant", rng.choice([0, 5, 127, 128, 300, 16383]))
            elif operation == 4:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 5)))
                arguments = ("append_bytes", data)
            elif operation == 5:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
                arguments = ("append_bits", data, rng.randrange(0, 8 * len(data) + 1))
            elif operation == 6:
                high = 3 + rng.choice([0, 1, 7, 254, 255, 256, 1000, 65535])
                value = rng.randrange(3, high + 1)
                arguments = ("append_constrained_whole_number", value, 3, high, (high - 3).bit_length())
            else:
                arguments = ("append_normally_small_non_negative_whole_number",
                             rng.choice([0, 5, 63, 64, 1000]))
            getattr(ours, arguments[0])(*arguments[1:])
            getattr(theirs, arguments[0])(*arguments[1:])
            assert ours.number_of_bytes() == theirs.number_of_bytes()
        assert ours.as_bytearray() == theirs.as_bytearray()
        assert ours.to_bytes() == bytes(theirs.as_bytearray())


# --- installation ------------------------------------------------------------------------------

def test_every_node_has_a_fast_checked_class():
    spec = codec.specification()
    fast = set(fastper._REPLACEMENTS.values()) | {per.Recursive}
    for node in codec.compiled_nodes(spec):
        assert type(node) in fast, node
    for module in spec.modules.values():
        for compiled_type in module.values():
            assert type(compiled_type) is fastper.CompiledType


def test_code_is_generated_for_every_container():
    # Fresh nodes (a pickled copy), so that nothing is generated yet.
    import pickle
    spec = pickle.loads(pickle.dumps(codec.specification()))
    stack = [t._type for module in spec.modules.values() for t in module.values()]
    seen, generated = set(), 0
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, fastper._Generated):
            assert "decode" not in node.__dict__ and "encode" not in node.__dict__
            fastper._generated(node, "decode")
            fastper._generated(node, "encode")
            generated += 1
        for attribute in ("root_members", "additions"):
            stack.extend(getattr(node, attribute, None) or [])
        for attribute in ("root_index_to_member", "additions_index_to_member"):
            stack.extend((getattr(node, attribute, None) or {}).values())
        for attribute in ("element_type", "_inner"):
            if getattr(node, attribute, None) is not None:
                stack.append(getattr(node, attribute))
    assert generated > 1000
    # ...and a spec in use still pickles (the generated functions are left out).
    assert pickle.loads(pickle.dumps(spec)).types["RasMessage"]


def test_specification_encode_and_decode_use_the_fast_runtime():
    spec = codec.specification()
    value = full_ras("registrationRequest", 3)
    data = spec.encode("RasMessage", value)
    assert data == codec.encode_ras(value)
    assert spec.decode("RasMessage", data, check_constraints=True) == value
    with pytest.raises(Exception):
        spec.encode("RequestSeqNum", 0)
    with pytest.raises(Exception):
        spec.encode("RequestSeqNum", 0, check_types=False, check_constraints=False)


def test_spelled_out_alphabet_patterns():
    assert fastper._NOT_ASCII == fastper._outside(range(128))
    assert fastper._NOT_BMP == fastper._outside(
        c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)


def test_install_refuses_a_node_class_it_cannot_check():
    spec = asn1tools.compile_string(
        "M DEFINITIONS AUTOMATIC TAGS ::= BEGIN T ::= SEQUENCE { a DATE } END", "per")
    codec._install_fixes(spec)
    with pytest.raises(TypeError, match="no checked replacement"):
        fastper.install(spec)


def test_values_are_not_shared_between_decodes():
    data = codec.encode_ras(full_ras("registrationRequest", 1))
    first = codec.decode_ras(data)
    second = codec.decode_ras(data)
    assert first == second
    copy.deepcopy(first)[1].clear()
    first[1].clear()
    assert second[1]


# --- forms H.225.0 does not use, on a small module ------------------------------------------------

SMALL = """
Small DEFINITIONS AUTOMATIC TAGS ::= BEGIN
S ::= SEQUENCE {
    n    NULL,
    b    BOOLEAN DEFAULT TRUE,
    i    INTEGER (0..7) DEFAULT 3,
    o    OCTET STRING (SIZE(2)) OPTIONAL,
    p    OCTET STRING (SIZE(1)),
    s    IA5String (SIZE(2)),
    v    IA5String (SIZE(1..4, ...)) OPTIONAL,
    x    INTEGER (0..10, ...) OPTIONAL,
    u    INTEGER OPTIONAL,
    h    INTEGER (0..MAX) OPTIONAL,
    big  INTEGER (0..4294967295) OPTIONAL,
    e    ENUMERATED { red, green, blue, ... } OPTIONAL,
    bits BIT STRING (SIZE(3..12)) OPTIONAL,
    l    SEQUENCE (SIZE(0..2, ...)) OF INTEGER (0..3) OPTIONAL,
    f    SEQUENCE (SIZE(2)) OF BOOLEAN OPTIONAL,
    num  NumericString (SIZE(1..8)) OPTIONAL,
    pr   PrintableString OPTIONAL,
    vis  VisibleString (SIZE(3)) OPTIONAL,
    bmp  BMPString (SIZE(1..3)) OPTIONAL,
    c    C OPTIONAL,
    ...,
    [[ g1 BOOLEAN, g2 INTEGER (0..3) OPTIONAL ]],
    z    NULL,
    y    BOOLEAN OPTIONAL,
    w    INTEGER (5..5) OPTIONAL,
    t    OCTET STRING (SIZE(0..200)) OPTIONAL
}
C ::= CHOICE { a NULL, b INTEGER (0..255), c INTEGER (0..65535), d OCTET STRING,
               e2 BOOLEAN, f2 NULL, g2 NULL, h2 NULL, i2 NULL, j2 NULL, ..., e BOOLEAN, f NULL }
Str ::= IA5String (SIZE(1..10))
Digits ::= IA5String (SIZE(1..10)) (FROM("0123456789#*,"))
Bmp ::= BMPString (SIZE(1..10))
Empty ::= SEQUENCE { a BOOLEAN, ... }
Oct ::= OCTET STRING (SIZE(1..4))
OctX ::= OCTET STRING (SIZE(1..4, ...))
OctU ::= OCTET STRING
Int ::= INTEGER (0..7)
IntX ::= INTEGER (0..7, ...)
LX ::= SEQUENCE (SIZE(1..2, ...)) OF BOOLEAN
Oid ::= OBJECT IDENTIFIER
Bool ::= BOOLEAN
Nul ::= NULL
END
"""


@pytest.fixture(scope="module")
def small():
    ours = asn1tools.compile_string(SMALL, "per")
    codec._install_fixes(ours)
    fastper.install(ours)
    theirs = asn1tools.compile_string(SMALL, "per")
    codec._install_fixes(theirs)
    return ours, theirs


def _small_same(small, type_name, value):
    ours, theirs = small
    a = outcome(fastper.encode, ours.types[type_name], value)
    b = outcome(reference_encode, theirs, type_name, value)
    assert a[0] == b[0], value
    if a[0] == "ok":
        assert a[1] == b[1], value
        assert_same(fastper.decode(ours.types[type_name], a[1]), theirs.decode(type_name, b[1]))
        # Truncated and damaged: refused, or decoded the same, by both.
        rng = random.Random(repr(value))
        ends = range(len(a[1])) if len(a[1]) <= 300 else rng.sample(range(len(a[1])), 100)
        damaged = [a[1][:end] for end in ends]
        for _ in range(30 if a[1] else 0):
            data = bytearray(a[1])
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            damaged.append(bytes(data))
        for data in damaged:
            x = outcome(fastper.decode, ours.types[type_name], data)
            y = outcome(theirs.decode, type_name, data)
            assert x[0] == y[0], data.hex()
            if x[0] == "ok":
                assert_same(x[1], y[1])


SMALL_BASE = {"n": None, "p": b"\x01", "s": "ab"}
SMALL_CHANGES = [
    {}, {"b": True}, {"b": False}, {"b": 1}, {"i": 3}, {"i": 5}, {"i": 8}, {"i": "3"},
    {"o": b"xy"}, {"o": b"x"}, {"p": b""}, {"s": "a"}, {"s": "\x80b"},
    {"v": "abcd"}, {"v": "abcde"}, {"v": ""}, {"x": 10}, {"x": 11}, {"x": -1},
    {"u": -(2 ** 40)}, {"u": 0}, {"u": 2 ** 70}, {"h": 0}, {"h": -1}, {"h": 2 ** 33},
    {"big": 0}, {"big": 4294967295}, {"big": 4294967296}, {"big": 65536},
    {"e": "green"}, {"e": "purple"}, {"e": 1},
    {"bits": (b"\xff\xf0", 12)}, {"bits": (b"\xe0", 3)}, {"bits": (b"\xe0", 2)}, {"bits": (b"", 3)},
    {"l": []}, {"l": [1, 2]}, {"l": [1, 2, 3]}, {"l": [4]}, {"l": (1,)},
    {"f": [True, False]}, {"f": [True]},
    {"num": "12 3"}, {"num": "12a"}, {"num": ""}, {"pr": "Hello, World"}, {"pr": "a_b"},
    {"vis": "abc"}, {"vis": "ab\n"}, {"bmp": "\u20ac\u4e2d"}, {"bmp": "\U0001f600"}, {"bmp": "\ud800"},
    {"c": ("a", None)}, {"c": ("b", 255)}, {"c": ("b", 256)}, {"c": ("c", 65535)}, {"c": ("d", b"x" * 300)},
    {"c": ("e", True)}, {"c": ("f", None)}, {"c": ("j2", None)}, {"c": ("zz", None)}, {"c": ("e", 1)},
    {"g1": True}, {"g1": True, "g2": 3}, {"g2": 3}, {"g1": False, "g2": 4},
    {"z": None}, {"y": True}, {"g1": True, "y": False}, {"z": 0}, {"y": None},
    {"w": 5}, {"g1": True, "z": None, "w": 5}, {"g1": False, "z": None, "w": 6},
    {"g1": True, "z": None, "t": b""}, {"g1": True, "z": None, "t": b"x" * 130},
    {"g1": True, "z": None, "t": b"x" * 201}, {"g1": True, "z": None, "y": True, "w": 5, "t": b"ab"},
]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@pytest.mark.parametrize("change", SMALL_CHANGES, ids=_short)
def test_small_module_encodes_and_refuses_as_asn1tools_does(small, change):
    _small_same(small, "S", dict(SMALL_BASE, **change))


@pytest.mark.parametrize("type_name,value", [
    ("Str", "abc"), ("Str", ""), ("Str", "x" * 11), ("Str", "\x80"), ("Str", b"abc"),
    ("Digits", "12#"), ("Digits", "12a"), ("Bmp", "\u20ac"), ("Bmp", "\U0001f600"), ("Bmp", ""),
    ("Oct", b"ab"), ("Oct", b""), ("Oct", b"abcde"), ("Oct", "ab"), ("Oct", bytearray(b"a")),
    ("OctX", b"ab"), ("OctX", b"abcdef"), ("OctX", b""), ("OctX", "ab"),
    ("OctU", b""), ("OctU", b"x" * 200), ("OctU", b"x" * 17000), ("OctU", None),
    ("Int", 7), ("Int", 8), ("Int", -1), ("Int", True), ("Int", 1.0),
    ("IntX", 7), ("IntX", 8), ("IntX", -1), ("IntX", "1"),
    ("LX", [True]), ("LX", [True] * 3), ("LX", []), ("LX", (True,)), ("LX", [1]),
    ("Oid", "1.2.3"), ("Oid", "1.2.x"), ("Oid", 5), ("Bool", True), ("Bool", 1),
    ("Nul", None), ("Nul", 0),
], ids=_short)
def test_small_module_top_level_leaves(small, type_name, value):
    _small_same(small, type_name, value)


def test_small_module_missing_members(small):
    for name in SMALL_BASE:
        _small_same(small, "S", {k: v for k, v in SMALL_BASE.items() if k != name})
    _small_same(small, "Empty", {"a": True})
    _small_same(small, "Empty", {})


@pytest.mark.parametrize("type_name,value,position,change", [
    ("Str", "abc", 2, 0x80),          # a byte outside IA5String
    ("Bmp", "ab", 1, 0xD8),           # a lone surrogate
    ("Digits", "999", 2, 0x30),       # index 15: not in the alphabet
])
def test_strings_outside_the_alphabet_are_refused_when_decoding(small, type_name, value, position, change):
    ours, theirs = small
    data = bytearray(fastper.encode(ours.types[type_name], value))
    assert theirs.decode(type_name, bytes(data)) == value
    data[position] |= change
    with pytest.raises(Exception):
        theirs.decode(type_name, bytes(data))
    with pytest.raises(Exception):
        fastper.decode(ours.types[type_name], bytes(data))


def test_a_bad_ia5_byte_in_a_ras_message_is_refused(reference):
    kind, fields = minimal_ras("registrationRequest", 0)
    fields["terminalAlias"] = [("url-ID", "abc"), ("email-ID", "x@y")]
    data = bytearray(codec.encode_ras((kind, fields)))
    for text in (b"abc", b"x@y"):
        damaged = bytearray(data)
        damaged[damaged.index(text)] |= 0x80
        with pytest.raises(Exception):
            reference.decode("RasMessage", bytes(damaged))
        with pytest.raises(DecodeError):
            codec.decode_ras(bytes(damaged))
