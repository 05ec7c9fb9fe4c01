"""Fast runtime for the compiled aligned-PER type tree (see ``codec``).

asn1tools stays our ASN.1 compiler; this module replaces what runs for every
message, which in asn1tools 0.169.0 is slow: its Decoder turns the input into
a ``'0101...'`` string and slices it, every primitive takes several Python
calls, and encoding runs two passes over the value (type checker, constraints
checker) before the encoder's own.

What is here
------------
``Decoder`` / ``Encoder``
    asn1tools' interfaces (its code, and ours in ``codec``, reads
    ``decoder.number_of_bits`` directly as the count of bits left) over one
    integer holding the input (or the output so far) instead of a bit string.
Subclasses of the compiled node classes
    ``install`` swaps them into the tree (after ``codec._install_fixes``).  They
    keep the names of the classes they replace and inherit from them (from
    ``codec``'s fixed classes where there is one), so isinstance() and
    asn1tools' own methods keep working; rare forms (fragmented lengths,
    extensible sizes, unconstrained integers...) use those methods.
Generated code for SEQUENCE/SET, CHOICE and SEQUENCE OF
    On its first use, each such node gets a Python function written for it
    alone: the bit position lives in local variables, the leaves below it
    (BOOLEAN, NULL, constrained INTEGER, OCTET STRING, IA5String/BMPString/...,
    OBJECT IDENTIFIER) are read or written inline, and extension additions
    follow ``codec._MembersFix`` (A1-A3).  See "Code generation" below.
Checks on encode (A4)
    Every value is checked as it is written, for its Python type and its
    constraints, by the same rules as asn1tools' type checker and constraints
    checker: ``install`` copies each node's constraints from the constraints
    checker's own tree, so one pass refuses what the three passes refused, and
    nothing is written out of range.  One deliberate difference: a value
    relaying an unknown CHOICE alternative (``"?extension-N"``) used to be
    encoded with no checks at all; here the rest of it is still checked.

``tests/test_fastper.py`` checks all of this against plain asn1tools with
``codec``'s fixes: the same bytes, the same decoded values, the same values
refused.  The node classes expect this module's Decoder and Encoder
(``CompiledType`` below, so also ``Specification.encode``/``decode``, uses
them).
"""

from __future__ import annotations

import linecache
import re
from typing import Any

from asn1tools.codecs import ConstraintsError, ErrorWithLocation, OutOfDataError
from asn1tools.codecs import compiler as _compiler
from asn1tools.codecs import constraints_checker as _cc
from asn1tools.codecs import per as _per
from asn1tools.codecs.ber import decode_object_identifier, encode_object_identifier

from gatekeeper.h225 import codec as _codec

EncodeError = _per.EncodeError
DecodeError = _per.DecodeError



# ---------------------------------------------------------------------------
# Decoder and Encoder
# ---------------------------------------------------------------------------


# Bits read (decoder) or written (encoder) between two trims/flushes of the
# big integer, which keep reads and writes cheap in long messages.
_TRIM_BITS = 4096


class Decoder(_per.Decoder):
    """asn1tools' PER Decoder over an integer instead of a '0101' string.

    ``data`` is the input, ``number_of_bits`` the count of bits not read yet
    (asn1tools code reads it directly) and those bits are the low
    ``number_of_bits`` bits of the integer ``value``; what is above them has
    been read (``trim`` drops it, so that shifts stay short).
    """

    def __init__(self, encoded):
        data = bytes(encoded)
        self.data = data
        self.total_number_of_bits = self.number_of_bits = len(data) << 3
        self.value = int.from_bytes(data, "big")
        self.trim_below = self.number_of_bits - _TRIM_BITS

    def trim(self):
        remaining = self.number_of_bits
        self.value &= (1 << remaining) - 1
        self.trim_below = remaining - _TRIM_BITS

    def align(self):
        self.number_of_bits &= ~7

    def align_always(self):
        self.number_of_bits &= ~7

    # asn1tools' own code (used for the rare forms) reads through these three:
    # they trim, so that long messages stay linear there too.

    def read_bit(self):
        remaining = self.number_of_bits
        if not remaining:
            raise OutOfDataError(self.total_number_of_bits)
        if remaining < self.trim_below:
            self.trim()
        remaining -= 1
        self.number_of_bits = remaining
        return (self.value >> remaining) & 1

    def read_non_negative_binary_integer(self, number_of_bits):
        remaining = self.number_of_bits
        if number_of_bits > remaining:
            raise OutOfDataError(self.total_number_of_bits - remaining)
        if remaining < self.trim_below:
            self.trim()
        remaining -= number_of_bits
        self.number_of_bits = remaining
        return (self.value >> remaining) & ((1 << number_of_bits) - 1)

    def read_bits(self, number_of_bits):
        """``number_of_bits`` bits, left-aligned in whole bytes (as asn1tools)."""
        remaining = self.number_of_bits
        if number_of_bits > remaining:
            raise OutOfDataError(self.total_number_of_bits - remaining)
        if remaining < self.trim_below:
            self.trim()
        start = self.total_number_of_bits - remaining
        self.number_of_bits = remaining - number_of_bits
        if not (start | number_of_bits) & 7:
            return self.data[start >> 3:(start + number_of_bits) >> 3]
        bits = (self.value >> (remaining - number_of_bits)) & ((1 << number_of_bits) - 1)
        pad = -number_of_bits & 7
        return (bits << pad).to_bytes((number_of_bits + pad) >> 3, "big")

    def read_bytes(self, number_of_bytes):
        return self.read_bits(number_of_bytes << 3)

    def read_length_determinant(self):
        remaining = self.number_of_bits
        if remaining < 8:
            raise OutOfDataError(self.total_number_of_bits - remaining)
        remaining -= 8
        first = (self.value >> remaining) & 0xFF
        if first < 0x80:
            self.number_of_bits = remaining
            return first
        if first < 0xC0:
            if remaining < 8:
                self.number_of_bits = remaining
                raise OutOfDataError(self.total_number_of_bits - remaining)
            remaining -= 8
            self.number_of_bits = remaining
            return ((first & 0x3F) << 8) | ((self.value >> remaining) & 0xFF)
        self.number_of_bits = remaining
        try:
            return {0xC1: 16384, 0xC2: 32768, 0xC3: 49152, 0xC4: 65536}[first]
        except KeyError:
            raise DecodeError(
                "Bad length determinant fragmentation value 0x{:02x}.".format(first)) from None

    def read_constrained_whole_number(self, minimum, maximum, number_of_bits):
        span = maximum - minimum + 1
        if span <= 255:
            pass
        elif span == 256:
            self.number_of_bits &= ~7
            number_of_bits = 8
        elif span <= 65536:
            self.number_of_bits &= ~7
            number_of_bits = 16
        else:
            self.number_of_bits &= ~7
        return self.read_non_negative_binary_integer(number_of_bits) + minimum


class Encoder(_per.Encoder):
    """asn1tools' PER Encoder over an integer and a bytearray.

    ``number_of_bits`` counts every bit written; the first whole octets may
    have been moved (``flush``) from the integer ``value`` to ``flushed``, so
    that ``value`` (the rest) stays short and appending to it cheap.
    """

    chunks: Any = ()
    chunks_number_of_bits = 0

    def __init__(self):
        self.number_of_bits = 0
        self.value = 0
        self.flushed = bytearray()
        self.flush_above = _TRIM_BITS

    def flush(self):
        bits = self.number_of_bits
        keep = bits & 7
        octets = (bits - keep - (len(self.flushed) << 3)) >> 3
        if octets > 0:
            self.flushed += (self.value >> keep).to_bytes(octets, "big")
            self.value &= (1 << keep) - 1
        self.flush_above = bits + _TRIM_BITS

    def _whole(self):
        """All bits as one integer."""
        pending = self.number_of_bits - (len(self.flushed) << 3)
        if not self.flushed:
            return self.value
        return (int.from_bytes(self.flushed, "big") << pending) | self.value

    def __iadd__(self, other):
        bits = other.number_of_bits
        if other.flushed and not self.number_of_bits & 7:
            self.flush()
            self.flushed += other.flushed
            pending = bits - (len(other.flushed) << 3)
            self.value = (self.value << pending) | other.value
        else:
            self.value = (self.value << bits) | other._whole()
        self.number_of_bits += bits
        if self.number_of_bits > self.flush_above:
            self.flush()
        return self

    def reset(self):
        self.number_of_bits = 0
        self.value = 0
        self.flushed = bytearray()
        self.flush_above = _TRIM_BITS

    def are_all_bits_zero(self):
        return not self.value and not any(self.flushed)

    def number_of_bytes(self):
        return (self.number_of_bits + 7) >> 3

    def offset(self):
        return self.number_of_bits

    def set_bit(self, offset):
        flushed = len(self.flushed) << 3
        if offset < flushed:
            self.flushed[offset >> 3] |= 0x80 >> (offset & 7)
        else:
            self.value |= 1 << (self.number_of_bits - offset - 1)

    def align(self):
        pad = -self.number_of_bits & 7
        if pad:
            self.value <<= pad
            self.number_of_bits += pad

    align_always = align

    def append_bit(self, bit):
        self.value = (self.value << 1) | bit
        self.number_of_bits += 1

    def append_non_negative_binary_integer(self, value, number_of_bits):
        self.value = (self.value << number_of_bits) | value
        self.number_of_bits += number_of_bits

    def append_bits(self, data, number_of_bits):
        if number_of_bits == 0:
            return
        value = int.from_bytes(data, "big") >> (8 * len(data) - number_of_bits)
        self.value = (self.value << number_of_bits) | value
        self.number_of_bits += number_of_bits
        if self.number_of_bits > self.flush_above:
            self.flush()

    def append_bytes(self, data):
        bits = len(data) << 3
        if bits:
            self.value = (self.value << bits) | int.from_bytes(data, "big")
            self.number_of_bits += bits
            if self.number_of_bits > self.flush_above:
                self.flush()

    def append_length_determinant(self, length):
        if length < 128:
            self.value = (self.value << 8) | length
            self.number_of_bits += 8
            return length
        if length < 16384:
            self.value = (self.value << 16) | 0x8000 | length
            self.number_of_bits += 16
            return length
        return super().append_length_determinant(length)

    def append_constrained_whole_number(self, value, minimum, maximum, number_of_bits):
        span = maximum - minimum + 1
        value -= minimum
        if span <= 255:
            pass
        elif span == 256:
            self.align()
            number_of_bits = 8
        elif span <= 65536:
            self.align()
            number_of_bits = 16
        else:
            self.align()
        self.value = (self.value << number_of_bits) | value
        self.number_of_bits += number_of_bits

    def to_bytes(self):
        """The encoding, padded with zero bits to whole octets."""
        bits = self.number_of_bits
        pad = -bits & 7
        pending = bits - (len(self.flushed) << 3)
        tail = (self.value << pad).to_bytes((pending + pad) >> 3, "big")
        return bytes(self.flushed) + tail if self.flushed else tail

    def as_bytearray(self):
        return bytearray(self.to_bytes())


# ---------------------------------------------------------------------------
# Helpers for constrained whole numbers (X.691 10.5)
# ---------------------------------------------------------------------------

# How a constrained whole number is laid out (asn1tools'
# read/append_constrained_whole_number with a range that fits 16 bits).
_BITS, _OCTET, _TWO_OCTETS = 1, 2, 3


def _layout(minimum: Any, maximum: Any) -> tuple[int, int]:
    """(layout, bit width) of a constrained whole number, or (0, 0)."""
    if not isinstance(minimum, int) or not isinstance(maximum, int):
        return 0, 0
    span = maximum - minimum + 1
    if span <= 255:
        return _BITS, (span - 1).bit_length() if span > 1 else 0
    if span == 256:
        return _OCTET, 8
    if span <= 65536:
        return _TWO_OCTETS, 16
    return 0, 0


def _bound(value: Any) -> int | None:
    """A constraints-checker bound as an int, None for MIN/MAX/absent."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_size(node: Any, size: int, what: str) -> None:
    low, high = node._fp_low, node._fp_high
    if (low is not None and size < low) or (high is not None and size > high):
        raise ConstraintsError("Expected between {} and {} {}, but got {}.".format(
            node._fp_low_text, node._fp_high_text, what, size))


def _size_limits(node: Any, checker: Any) -> None:
    """Copy the constraints checker's size (or value) range onto ``node``."""
    minimum = getattr(checker, "minimum", "MIN")
    maximum = getattr(checker, "maximum", "MAX")
    node._fp_low = _bound(minimum)
    node._fp_high = _bound(maximum)
    node._fp_low_text = minimum
    node._fp_high_text = maximum


# ---------------------------------------------------------------------------
# SEQUENCE, SET, extension addition groups and CHOICE
# ---------------------------------------------------------------------------


class _Generated:
    """Containers whose decode/encode are generated Python functions.

    The first ``decode``/``encode`` of a node builds a function specialised to
    it (see "Code generation" below) and stores it on the node as an instance
    attribute, which shadows these methods from then on.  Those functions are
    not pickled.
    """

    def decode(self, decoder):
        return _generated(self, "decode")(decoder)

    def encode(self, data, encoder):
        return _generated(self, "encode")(data, encoder)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("decode", None)
        state.pop("encode", None)
        return state


class _MembersFast(_Generated):
    """SEQUENCE/SET; extension additions as ``codec._MembersFix`` (A1-A3)."""

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode_member(self, member, data, encoder, encode_default=False):
        # asn1tools' version (AdditionGroup.encode_addition_group uses it),
        # which also checks a member left out for being its default.
        name = member.name
        if name in data:
            value = data[name]
            try:
                if member.default is None or encode_default or not member.is_default(value):
                    member.encode(value, encoder)
                else:
                    member.encode(value, Encoder())
            except ErrorWithLocation as error:
                error.add_location(member)
                raise
        elif not (member.optional or member.default is not None):
            raise EncodeError("{} member '{}' not found in {}.".format(
                self.__class__.__name__, name, data))

    def _fp_missing(self, missing: int) -> EncodeError:
        """The A3 error for the first mandatory addition in ``missing`` (a
        mask with bit K-1-i for addition i)."""
        count = len(self.additions)
        index = count - missing.bit_length()
        return EncodeError(
            f"{self.type_name} extension addition '{self.additions[index].name}' is mandatory "
            f"once a later addition is present")


class Sequence(_MembersFast, _codec.Sequence):
    pass


class Set(_MembersFast, _codec.Set):
    pass


class AdditionGroup(_MembersFast, _codec.AdditionGroup):
    pass


class Choice(_Generated, _codec.Choice):
    """Root alternatives generated; extensions go through ``codec.Choice``."""

    def _fp_prepare(self, checker: Any) -> None:
        pass


# ---------------------------------------------------------------------------
# SEQUENCE OF / SET OF
# ---------------------------------------------------------------------------


class _ArrayFast(_Generated):
    """SEQUENCE OF / SET OF: generated; ``_interpreted_*`` for the rare forms
    (extensible sizes, fragmented lengths)."""

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)
        self._fp_count_layout, self._fp_count_width = 0, 0
        if self.has_extension_marker:
            self._fp_mode = 0                     # asn1tools' code
        elif self.number_of_bits is None:
            self._fp_mode = 1                     # length determinant
        elif self.minimum != self.maximum:
            self._fp_mode = 2                     # constrained count
            self._fp_count_layout, self._fp_count_width = _layout(self.minimum, self.maximum)
            if not self._fp_count_layout:
                self._fp_mode = 0
        else:
            self._fp_mode = 3                     # fixed count

    def _interpreted_decode(self, decoder):
        """asn1tools' ArrayType.decode, trimming the decoder as it goes."""
        if self._fp_mode != 1:
            return _per.ArrayType.decode(self, decoder)
        decoder.align()
        element = self.element_type
        decoded = []
        for length in decoder.read_length_determinant_chunks():
            for _ in range(length):
                if decoder.number_of_bits < decoder.trim_below:
                    decoder.trim()
                decoded.append(element.decode(decoder))
        return decoded

    def _interpreted_encode(self, data, encoder):
        # (Type and size already checked by the generated encoder.)
        return _per.ArrayType.encode(self, data, encoder)


class SequenceOf(_ArrayFast, _per.SequenceOf):
    pass


class SetOf(_ArrayFast, _per.SetOf):
    pass


# ---------------------------------------------------------------------------
# Simple types
# ---------------------------------------------------------------------------
#
# Below a container, these are written inline by the generated code; their
# methods (asn1tools' own, after the checks) serve a leaf type encoded on its
# own and the rare forms the generated code hands back (long lengths...).
# ``_fp_prepare`` records what the generated code needs.


class Boolean(_per.Boolean):

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode(self, data, encoder):
        if data is not True and data is not False:
            raise EncodeError("Expected data of type bool, but got {}.".format(data))
        super().encode(data, encoder)


class Null(_per.Null):

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode(self, data, encoder):
        if data is not None:
            raise EncodeError("Expected None, but got {}.".format(data))


class Integer(_per.Integer):

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)
        self._fp_layout, self._fp_width = 0, 0
        if self.number_of_bits is not None and self.number_of_indefinite_bits is None:
            self._fp_layout, self._fp_width = _layout(self.minimum, self.maximum)
        # Inline when the layout is one of _layout's (and no extension bit).
        self._fp_fast = bool(self._fp_layout) and not self.has_extension_marker
        # Or the "indefinite length" layout of a range above 65536: the octet
        # count minus one in this many bits, then the octets, aligned.
        self._fp_octets_bits = None
        if (self.number_of_bits is not None and self.number_of_indefinite_bits is not None
                and self.number_of_indefinite_bits < 8  # (then the count is plain bits)
                and not self.has_extension_marker and isinstance(self.minimum, int)):
            self._fp_octets_bits = self.number_of_indefinite_bits

    def encode(self, data, encoder):
        if not isinstance(data, int):
            raise EncodeError("Expected data of type int or str, but got {}.".format(data))
        low, high = self._fp_low, self._fp_high
        if (low is not None and data < low) or (high is not None and data > high):
            raise ConstraintsError("Expected an integer between {} and {}, but got {}.".format(
                self._fp_low_text, self._fp_high_text, data))
        super().encode(data, encoder)


class Enumerated(_per.Enumerated):

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode(self, data, encoder):
        if not isinstance(data, str):
            raise EncodeError("Expected data of type str, but got {}.".format(data))
        super().encode(data, encoder)


def _sized_mode(node: Any) -> None:
    """How the generated code writes an OCTET STRING / character string's
    length (asn1tools' encode/decode for the node, case by case)."""
    node._fp_count_layout, node._fp_count_width = 0, 0
    if node.has_extension_marker:
        node._fp_mode = 0                     # not inline: asn1tools' code
    elif node.number_of_bits is None:
        node._fp_mode = 1                     # length determinant
    elif node.minimum != node.maximum:
        node._fp_mode = 2                     # constrained length
        node._fp_count_layout, node._fp_count_width = _layout(node.minimum, node.maximum)
        if not node._fp_count_layout:
            node._fp_mode = 0
    else:
        node._fp_mode = 3                     # fixed length (4: aligned, set by the caller)


class OctetString(_per.OctetString):

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)
        _sized_mode(self)
        if self._fp_mode == 3 and self.maximum > 2:
            self._fp_mode = 4

    def encode(self, data, encoder):
        if not isinstance(data, (bytes, bytearray)):
            raise EncodeError(
                "Expected data of type bytes or bytearray, but got {}.".format(data))
        _check_size(self, len(data), "bytes")
        super().encode(data, encoder)


class BitString(_per.BitString):

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)

    def encode(self, data, encoder):
        if (not isinstance(data, tuple) or len(data) != 2
                or not isinstance(data[0], (bytes, bytearray)) or not isinstance(data[1], int)):
            raise EncodeError(
                "Expected data of type tuple(bytes, int), but got {}.".format(data))
        if 8 * len(data[0]) < data[1]:
            raise EncodeError("Expected at least {} bit(s) data, but got {}.".format(
                data[1], 8 * len(data[0])))
        _check_size(self, data[1], "bits")
        super().encode(data, encoder)


# OBJECT IDENTIFIER contents are converted by asn1tools' BER helpers; the few
# identifiers a gatekeeper sees (protocolIdentifier...) are kept converted.
_OID_DECODED: dict[bytes, str] = {}
_OID_ENCODED: dict[str, bytes] = {}
_OID_CACHE_SIZE = 256


class ObjectIdentifier(_per.ObjectIdentifier):

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode(self, data, encoder):
        if not isinstance(data, str):
            raise EncodeError("Expected data of type str, but got {}.".format(data))
        super().encode(data, encoder)


# ---------------------------------------------------------------------------
# Known-multiplier character strings (IA5String, BMPString, ...)
# ---------------------------------------------------------------------------

_IDENTITY_8, _IDENTITY_16, _MAPPED = 1, 2, 3

_REGEX: dict[str, re.Pattern] = {}


def _regex(pattern: str) -> re.Pattern:
    compiled = _REGEX.get(pattern)
    if compiled is None:
        compiled = _REGEX[pattern] = re.compile(pattern)
    return compiled


def _outside(codes: Any) -> str:
    """A regex matching any character whose code is not in ``codes``."""
    codes = sorted(set(codes))
    if not codes:
        return r"[\s\S]"
    parts, first, last = [], codes[0], codes[0]
    for code in codes[1:] + [None]:
        if code is not None and code == last + 1:
            last = code
            continue
        parts.append("\\U%08x" % first if first == last else "\\U%08x-\\U%08x" % (first, last))
        if code is not None:
            first = last = code
    return "[^" + "".join(parts) + "]"


# _outside(range(128)) and _outside(the BMP without surrogates), spelled out.
_NOT_ASCII = "[^\\U00000000-\\U0000007f]"
_NOT_BMP = "[^\\U00000000-\\U0000d7ff\\U0000e000-\\U0000ffff]"

# Facts about alphabets, worked out once each (the BMP has 63488 characters
# and most string nodes share their type's alphabet objects).
_ALPHABET_FACTS: dict[int, tuple] = {}
_ALLOWED_FACTS: dict[str, tuple] = {}


def _alphabet_facts(alphabet: _per.PermittedAlphabet) -> tuple:
    """Of an encoder alphabet: (is the map the identity, set of encodable
    codes, has surrogates or non-BMP codes, pattern of the undecodable)."""
    facts = _ALPHABET_FACTS.get(id(alphabet))
    if facts is None or facts[0] is not alphabet:
        encode_map = alphabet.encode_map
        identity = all(key == value for key, value in encode_map.items()) and all(
            key == value for key, value in alphabet.decode_map.items())
        encodable = frozenset(encode_map)
        beyond = any(0xD800 <= c <= 0xDFFF or c > 0xFFFF for c in encodable)
        facts = (alphabet, identity, encodable, beyond, _outside(alphabet.decode_map.values()))
        _ALPHABET_FACTS[id(alphabet)] = facts
    return facts[1:]


def _allowed_facts(allowed: str) -> tuple:
    """Of a constraints checker's alphabet: (set of codes, refusing pattern)."""
    facts = _ALLOWED_FACTS.get(allowed)
    if facts is None:
        codes = frozenset(map(ord, allowed))
        facts = _ALLOWED_FACTS[allowed] = (codes, _outside(codes))
    return facts


class _StringFast:
    """IA5String/BMPString/PrintableString/... (KnownMultiplierStringType).

    ``_fp_coding`` tells the generated code how characters map to bits, when
    it can write them inline: the identity on 8 (ASCII) or 16 (UTF-16, no
    surrogates) bits, or a small alphabet through a table; 0: not inline.
    """

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)
        # The constraints checker's alphabet (a str), or none.
        allowed = getattr(checker, "permitted_alphabet", None)
        checked, self._fp_refuse = _allowed_facts(allowed) if allowed is not None else (None, None)
        alphabet = self.permitted_alphabet
        bits = self.bits_per_character
        identity, encodable, beyond_bmp, undecodable = _alphabet_facts(alphabet)
        coding = 0
        # Only when whatever the checker lets through is in the encoder's map.
        if checked is not None and checked <= encodable:
            if identity and bits == 8 and self.ENCODING == "ascii" and max(encodable) < 128:
                coding = _IDENTITY_8
            elif identity and bits == 16 and self.ENCODING == "utf-16-be" and not beyond_bmp:
                coding = _IDENTITY_16
            elif not identity and bits <= 8 and self.ENCODING == "ascii" \
                    and all(code < 128 for code in alphabet.decode_map.values()):
                coding = _MAPPED
        if coding and self.number_of_bits is None:
            # decode_unbound writes characters with the width of the whole
            # alphabet of the type: the same bytes only for these cases.
            whole = _per.integer_as_number_of_bits_power_of_two(len(self.ALPHABET) - 1)
            if coding == _IDENTITY_16 and whole != 16:
                coding = 0
        self._fp_coding = coding
        if coding == _IDENTITY_8 or coding == _IDENTITY_16:
            self._fp_refuse_decoded = undecodable
        if coding == _MAPPED:
            self._fp_encode_map = {chr(code): index for code, index in alphabet.encode_map.items()}
            table = [None] * (1 << bits)
            for index, code in alphabet.decode_map.items():
                if 0 <= index < len(table):
                    table[index] = chr(code)
            self._fp_decode_table = tuple(table)
        _sized_mode(self)
        if not coding:
            self._fp_mode = 0
        elif self._fp_mode == 3 and self.maximum * bits > 16:
            self._fp_mode = 4
        # The type's default alphabet is a class attribute of ours too: not
        # pickled with every spec (the BMP's is half of it).
        if self.__dict__.get("permitted_alphabet") is type(self).permitted_alphabet:
            del self.__dict__["permitted_alphabet"]

    def encode(self, data, encoder):
        if not isinstance(data, str):
            raise EncodeError("Expected data of type str, but got {}.".format(data))
        _check_size(self, len(data), "characters")
        if self._fp_refuse is not None:
            bad = _regex(self._fp_refuse).search(data)
            if bad is not None:
                character = bad.group()
                raise ConstraintsError(
                    "Expected a character in the permitted alphabet, but got {!r} (0x{:02x}).".format(
                        character, ord(character)))
        super().encode(data, encoder)


class IA5String(_StringFast, _per.IA5String):
    permitted_alphabet = _per.IA5String.PERMITTED_ALPHABET


class BMPString(_StringFast, _per.BMPString):
    permitted_alphabet = _per.BMPString.PERMITTED_ALPHABET


class PrintableString(_StringFast, _per.PrintableString):
    permitted_alphabet = _per.PrintableString.PERMITTED_ALPHABET


class NumericString(_StringFast, _per.NumericString):
    permitted_alphabet = _per.NumericString.PERMITTED_ALPHABET


class VisibleString(_StringFast, _per.VisibleString):
    permitted_alphabet = _per.VisibleString.PERMITTED_ALPHABET


class _StringChecked:
    """Other string types: asn1tools' code after the checkers' checks."""

    def _fp_prepare(self, checker: Any) -> None:
        _size_limits(self, checker)
        allowed = getattr(checker, "permitted_alphabet", None)
        self._fp_refuse = _allowed_facts(allowed)[1] if allowed is not None else None

    def encode(self, data, encoder):
        if not isinstance(data, str):
            raise EncodeError("Expected data of type str, but got {}.".format(data))
        _check_size(self, len(data), "characters")
        if self._fp_refuse is not None and _regex(self._fp_refuse).search(data):
            raise ConstraintsError("Expected a character in the permitted alphabet.")
        super().encode(data, encoder)


class UTF8String(_StringChecked, _per.UTF8String):
    pass


class GeneralString(_StringChecked, _per.GeneralString):
    pass


class GraphicString(_StringChecked, _per.GraphicString):
    pass


class TeletexString(_StringChecked, _per.TeletexString):
    pass


class UniversalString(_StringChecked, _per.UniversalString):
    pass


class ObjectDescriptor(_StringChecked, _per.ObjectDescriptor):
    pass


class Real(_per.Real):

    def _fp_prepare(self, checker: Any) -> None:
        pass

    def encode(self, data, encoder):
        if not isinstance(data, (float, int)):
            raise EncodeError("Expected data of type float or int, but got {}.".format(data))
        super().encode(data, encoder)


class OpenType(_per.OpenType):

    def _fp_prepare(self, checker: Any) -> None:
        pass


# ---------------------------------------------------------------------------
# Code generation for the containers
# ---------------------------------------------------------------------------
#
# A container's function keeps the bit position (decode: ``n``, bits left; the
# input integer ``v``) or the output so far (encode: ``w``, ``k`` bits) in
# local variables, writes the leaves below it inline (BOOLEAN, NULL,
# constrained INTEGER, OCTET STRING, IA5String/BMPString/..., OBJECT
# IDENTIFIER; with their checks when encoding) and calls the node's
# ``decode``/``encode`` for anything else, after storing the position back in
# the Decoder/Encoder (and reading it again after).  Every layout decision
# below repeats one taken in asn1tools' per.py for the same node; the leaf
# classes above implement the same layouts as methods.


def _oob(decoder: Decoder, remaining: int):
    """Raise asn1tools' OutOfDataError for a read that started with
    ``remaining`` bits left."""
    raise OutOfDataError(decoder.total_number_of_bits - remaining)


def _mapped_text(table: tuple, value: int, bits: int, count: int) -> str:
    """``count`` characters of ``bits`` bits each (lowest bits of ``value``)
    through a decode table (None: not in the alphabet)."""
    mask = (1 << bits) - 1
    try:
        return "".join([table[(value >> (bits * (count - 1 - i))) & mask] for i in range(count)])
    except TypeError:
        raise DecodeError("Expected a value in the permitted alphabet.") from None


def _oid_decoded(raw: bytes) -> str:
    text = _OID_DECODED.get(raw)
    if text is None:
        text = decode_object_identifier(bytearray(raw), 0, len(raw))
        if len(_OID_DECODED) >= _OID_CACHE_SIZE:
            _OID_DECODED.clear()
        _OID_DECODED[raw] = text
    return text


def _oid_encoded(text: str) -> bytes:
    raw = _OID_ENCODED.get(text)
    if raw is None:
        raw = bytes(encode_object_identifier(text))
        if len(_OID_ENCODED) >= _OID_CACHE_SIZE:
            _OID_ENCODED.clear()
        _OID_ENCODED[text] = raw
    return raw


def _choice_parts(data: Any) -> tuple:
    if not isinstance(data, tuple) or len(data) != 2 or not isinstance(data[0], str):
        raise EncodeError("Expected data of type tuple(str, object), but got {}.".format(data))
    return data


def _open_type(encoder: Encoder, value: int, bits: int, content: int, size: int) -> tuple:
    """Append to (value, bits) an extension addition's open type holding
    ``size`` bits ``content``: whole octets, at least one (A1), after their
    count (as ``codec._MembersFix.encode_additions``)."""
    pad = -size & 7
    content <<= pad
    size += pad
    if not size:
        size = 8
    count = size >> 3
    if count < 128:
        value = (value << 8) | count
        bits += 8
    elif count < 16384:
        value = (value << 16) | 0x8000 | count
        bits += 16
    else:
        encoder.value = value
        encoder.number_of_bits = bits
        encoder.append_length_determinant(count)
        value, bits = encoder.value, encoder.number_of_bits
    return (value << size) | content, bits + size


def _skip_open_types(decoder: Decoder, present: int, count: int) -> None:
    """Skip the open types of extension additions this codec does not know."""
    for index in range(count):
        if (present >> (count - 1 - index)) & 1:
            decoder.skip_bits(8 * decoder.read_length_determinant())


_GLOBALS = {
    "_oob": _oob, "_mapped_text": _mapped_text, "_oid_decoded": _oid_decoded,
    "_oid_encoded": _oid_encoded, "_choice_parts": _choice_parts,
    "_skip_open_types": _skip_open_types, "_open_type": _open_type,
    "Encoder": Encoder, "EncodeError": EncodeError, "DecodeError": DecodeError,
    "ConstraintsError": ConstraintsError, "ErrorWithLocation": ErrorWithLocation,
    "_FROM_BYTES": int.from_bytes, "_OID_DECODED": _OID_DECODED,
    "_OID_ENCODED": _OID_ENCODED,
}

# A CHOICE with more root alternatives than this dispatches through a table
# instead of a chain of tests.
_INLINE_ALTERNATIVES = 8


class _Source:
    """Lines of one generated function and the objects it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace = dict(_GLOBALS)

    def ref(self, obj: Any, prefix: str = "c") -> str:
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = obj
        return name

    def __call__(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def build(self, node: Any, name: str) -> Any:
        text = "\n".join(self.lines) + "\n"
        label = f"<fastper {name} {node.type_name} {node.name} {id(node):x}>"
        exec(compile(text, label, "exec"), self.namespace)
        # So that tracebacks show the generated lines.
        linecache.cache[label] = (len(text), None, text.splitlines(True), label)
        return self.namespace["f"]


def _generated(node: Any, what: str) -> Any:
    """The generated decode/encode function of a container node."""
    function = node.__dict__.get(what)
    if function is None:
        if isinstance(node, _per.MembersType):
            build = _members_decoder if what == "decode" else _members_encoder
        elif isinstance(node, _per.Choice):
            build = _choice_decoder if what == "decode" else _choice_encoder
        else:
            build = _array_decoder if what == "decode" else _array_encoder
        function = build(node)
        setattr(node, what, function)
    return function


def _quote(name: str) -> str:
    return repr(str(name))


# --- decode --------------------------------------------------------------------------------


def _read(src: _Source, depth: int, target: str, width: int, offset: int = 0) -> None:
    """``target`` = the next ``width`` bits (+ offset)."""
    if width == 0:
        src(depth, f"{target} = {offset}")
        return
    src(depth, f"n -= {width}")
    src(depth, f"if n < 0: _oob(d, n + {width})")
    plus = f" + {offset}" if offset else ""
    src(depth, f"{target} = ((v >> n) & {(1 << width) - 1}){plus}")


def _read_layout(src: _Source, depth: int, target: str, layout: int, width: int,
                 offset: int = 0) -> None:
    if layout != _BITS:
        src(depth, "n &= -8")
    _read(src, depth, target, width, offset)


def _read_octets_to(src: _Source, depth: int, target: str, count: str) -> None:
    """``target`` = ``count`` octets from an aligned position."""
    src(depth, f"n -= {count} << 3")
    src(depth, f"if n < 0: _oob(d, n + ({count} << 3))")
    src(depth, "o = (T - n) >> 3")
    src(depth, f"{target} = data[o - {count}:o]")


def _call_decode(src: _Source, depth: int, node: Any, target: str) -> None:
    name = src.ref(node, "m")
    src(depth, "d.number_of_bits = n")
    src(depth, f"{target} = {name}.decode(d)")
    src(depth, "n = d.number_of_bits")


def _length_then(src: _Source, depth: int, node: Any, target: str) -> int:
    """Aligned one-octet length determinant into ``z``; other forms call
    the node's method (which reads it again).  Returns the depth for the
    fast path (under ``else:``)."""
    src(depth, "n &= -8")
    src(depth, "n -= 8")
    src(depth, "if n < 0: _oob(d, n + 8)")
    src(depth, "z = (v >> n) & 255")
    src(depth, "if z > 127:")
    src(depth + 1, "n += 8")
    _call_decode(src, depth + 1, node, target)
    src(depth, "else:")
    return depth + 1


def _read_unaligned_octets_to(src: _Source, depth: int, target: str, count: str) -> None:
    """``target`` = ``count`` octets from any bit position."""
    src(depth, f"o = {count} << 3")
    src(depth, "n -= o")
    src(depth, "if n < 0: _oob(d, n + o)")
    src(depth, f"{target} = ((v >> n) & ((1 << o) - 1)).to_bytes({count}, 'big')")


def _decode_string_body(src: _Source, depth: int, node: Any, target: str, count: str,
                        aligned: bool) -> None:
    coding = node._fp_coding
    read = _read_octets_to if aligned else _read_unaligned_octets_to
    if coding == _IDENTITY_8:
        read(src, depth, "y", count)
        src(depth, f"{target} = y.decode('latin-1')")
    elif coding == _IDENTITY_16:
        src(depth, f"z2 = {count} << 1")
        read(src, depth, "y", "z2")
        src(depth, "try:")
        src(depth + 1, f"{target} = y.decode('utf-16-be')")
        src(depth, "except UnicodeDecodeError:")
        src(depth + 1, "raise DecodeError('Expected a BMPString, but got a lone surrogate.') from None")
        src(depth, f"if len({target}) != {count}:")
        src(depth + 1, "raise DecodeError('Expected a BMPString, but got a surrogate pair.')")
    else:
        bits = node.bits_per_character
        table = src.ref(node._fp_decode_table, "t")
        src(depth, f"z2 = {count} * {bits}")
        src(depth, "n -= z2")
        src(depth, "if n < 0: _oob(d, n + z2)")
        src(depth, f"{target} = _mapped_text({table}, v >> n, {bits}, {count})")
        return
    refuse = node._fp_refuse_decoded
    if refuse == _NOT_ASCII:
        test = f"not {target}.isascii()"
    elif refuse == _NOT_BMP:
        return  # a BMP character: all that the UTF-16 checks above let through
    else:
        test = f"{src.ref(_regex(refuse).search, 'bad')}({target})"
    src(depth, f"if {test}:")
    src(depth + 1, "raise DecodeError('Expected a value in the permitted alphabet, but got {!r}.'"
                   f".format({target}))")


def _decode_leaf(src: _Source, depth: int, node: Any, target: str) -> None:
    """Decode ``node`` into ``target``: inline when it is a simple leaf."""
    if isinstance(node, Boolean):
        src(depth, "n -= 1")
        src(depth, "if n < 0: _oob(d, 0)")
        src(depth, f"{target} = ((v >> n) & 1) == 1")
    elif isinstance(node, Null):
        src(depth, f"{target} = None")
    elif isinstance(node, Integer) and node._fp_fast:
        _read_layout(src, depth, target, node._fp_layout, node._fp_width, node.minimum)
    elif isinstance(node, Integer) and node._fp_octets_bits is not None:
        # asn1tools' Integer.decode with number_of_indefinite_bits.
        _read(src, depth, "z", node._fp_octets_bits, 1)
        src(depth, "n &= -8")
        src(depth, "o = z << 3")
        src(depth, "n -= o")
        src(depth, "if n < 0: _oob(d, n + o)")
        plus = f" + {node.minimum}" if node.minimum else ""
        src(depth, f"{target} = ((v >> n) & ((1 << o) - 1)){plus}")
    elif isinstance(node, OctetString) and node._fp_mode:
        mode = node._fp_mode
        if mode == 1:
            inner = _length_then(src, depth, node, target)
            _read_octets_to(src, inner, target, "z")
        elif mode == 2:
            _read_layout(src, depth, "z", node._fp_count_layout, node._fp_count_width, node.minimum)
            src(depth, "n &= -8")
            _read_octets_to(src, depth, target, "z")
        elif mode == 3:
            count = node.minimum
            if count == 0:
                src(depth, f"{target} = b''")
            else:
                _read(src, depth, "z", 8 * count)
                src(depth, f"{target} = z.to_bytes({count}, 'big')")
        else:
            src(depth, "n &= -8")
            _read_octets_to(src, depth, target, str(node.minimum))
    elif isinstance(node, _StringFast) and node._fp_mode:
        mode = node._fp_mode
        if mode == 1:
            inner = _length_then(src, depth, node, target)
            _decode_string_body(src, inner, node, target, "z", True)
        elif mode == 2:
            _read_layout(src, depth, "z", node._fp_count_layout, node._fp_count_width, node.minimum)
            if node.maximum > 1:
                src(depth, "if z: n &= -8")
            # (nothing to read when z == 0, aligned or not)
            _decode_string_body(src, depth, node, target, "z", node.maximum > 1)
        else:
            if mode == 4:
                src(depth, "n &= -8")
            src(depth, f"z = {node.minimum}")
            _decode_string_body(src, depth, node, target, "z", mode == 4)
    elif isinstance(node, ObjectIdentifier):
        inner = _length_then(src, depth, node, target)
        _read_octets_to(src, inner, "y", "z")
        src(inner, f"{target} = _OID_DECODED.get(y)")
        src(inner, f"if {target} is None: {target} = _oid_decoded(y)")
    else:
        _call_decode(src, depth, node, target)


def _prologue_decode(src: _Source) -> None:
    src(0, "def f(d):")
    src(1, "v = d.value")
    src(1, "n = d.number_of_bits")
    src(1, "data = d.data")
    src(1, "T = d.total_number_of_bits")


def _members_decoder(node: Any) -> Any:
    src = _Source()
    _prologue_decode(src)
    optionals = node.optionals
    count = len(optionals)
    extensible = node.additions is not None
    preamble = count + extensible
    bit_of = {id(member): 1 << (count - 1 - index) for index, member in enumerate(optionals)}
    if preamble:
        src(1, f"n -= {preamble}")
        src(1, "if n < 0: _oob(d, 0)")
        src(1, f"b = (v >> n) & {(1 << preamble) - 1}")
    src(1, "r = {}")
    src(1, "cur = None")
    src(1, "try:")
    body = 2
    src(body, "pass")
    for member in node.root_members:
        key = _quote(member.name)
        mask = bit_of.get(id(member))
        depth = body
        if mask is not None:
            src(body, f"if b & {mask}:")
            depth = body + 1
        src(depth, f"cur = {src.ref(member, 'm')}")
        _decode_leaf(src, depth, member, "x")
        src(depth, f"r[{key}] = x")
        if mask is not None and member.default is not None:
            src(body, "else:")
            src(body + 1, f"r[{key}] = {src.ref(member.default, 'default')}")
    if extensible:
        src(body, "cur = None")
        src(body, f"if b & {1 << count}:")
        _additions_decoder(src, body + 1, node)
    src(1, "except ErrorWithLocation as error:")
    src(2, "if cur is not None: error.add_location(cur)")
    src(2, "raise")
    src(1, "d.number_of_bits = n")
    src(1, "return r")
    return src.build(node, "decode")


def _additions_decoder(src: _Source, depth: int, node: Any) -> None:
    """X.691 19.7-19.9 as ``codec._MembersFix.decode_additions`` (A2)."""
    additions = node.additions
    known = len(additions)
    src(depth, "n -= 1")
    src(depth, "if n < 0: _oob(d, n + 1)")
    src(depth, "if (v >> n) & 1:")
    src(depth + 1, "n -= 1")
    src(depth + 1, "if n < 0: _oob(d, n + 1)")
    src(depth + 1, "if (v >> n) & 1:")
    src(depth + 2, "raise NotImplementedError("
                   "'Normally small length number >64 is not yet supported.')")
    _read(src, depth + 1, "L", 7)
    src(depth, "else:")
    _read(src, depth + 1, "L", 6, 1)
    src(depth, "n -= L")
    src(depth, "if n < 0: _oob(d, n + L)")
    src(depth, "p = (v >> n) & ((1 << L) - 1)")
    src(depth, "n &= -8")
    if known:
        src(depth, f"q = p << ({known} - L) if L <= {known} else p >> (L - {known})")
        for index, addition in enumerate(additions):
            src(depth, f"if q & {1 << (known - 1 - index)}:")
            inner = depth + 1
            src(inner, "n -= 8")
            src(inner, "if n < 0: _oob(d, n + 8)")
            src(inner, "az = (v >> n) & 255")
            src(inner, "if az > 127:")
            src(inner + 1, "d.number_of_bits = n + 8")
            src(inner + 1, "az = d.read_length_determinant()")
            src(inner + 1, "n = d.number_of_bits")
            src(inner, "az <<= 3")
            src(inner, "a0 = n")
            src(inner, f"cur = {src.ref(addition, 'a')}")
            if isinstance(addition, _per.AdditionGroup):
                _call_decode(src, inner, addition, "x")
                src(inner, "r.update(x)")
            else:
                _decode_leaf(src, inner, addition, "x")
                src(inner, f"r[{_quote(addition.name)}] = x")
            src(inner, "cur = None")
            src(inner, "if a0 - n > az:")
            message = f"extension addition '{addition.name}' overruns its open type"
            src(inner + 1, f"raise DecodeError({message!r})")
            src(inner, "n = a0 - az")
            src(inner, "if n < 0: _oob(d, 0)")
        src(depth, f"if L > {known} and p & ((1 << (L - {known})) - 1):")
        src(depth + 1, "d.number_of_bits = n")
        src(depth + 1, f"_skip_open_types(d, p & ((1 << (L - {known})) - 1), L - {known})")
        src(depth + 1, "n = d.number_of_bits")
    else:
        src(depth, "if p:")
        src(depth + 1, "d.number_of_bits = n")
        src(depth + 1, "_skip_open_types(d, p, L)")
        src(depth + 1, "n = d.number_of_bits")


def _choice_decoder(node: Any) -> Any:
    src = _Source()
    _prologue_decode(src)
    me = src.ref(node, "node")
    members = [node.root_index_to_member[i] for i in range(len(node.root_index_to_member))]
    if node.additions_index_to_member is not None:
        src(1, "n -= 1")
        src(1, "if n < 0: _oob(d, 0)")
        src(1, "if (v >> n) & 1:")
        src(2, "d.number_of_bits = n")
        src(2, f"return {me}.decode_additions(d)")
    if len(members) == 1:
        src(1, "i = 0")
    elif node.number_of_indefinite_bits is None:
        layout, width = _layout(0, node.maximum)
        _read_layout(src, 1, "i", layout, width)
    else:
        src(1, "d.number_of_bits = n")
        src(1, f"i = {me}.decode_root_index(d)")
        src(1, "n = d.number_of_bits")
    src(1, "cur = None")
    src(1, "try:")
    if len(members) <= _INLINE_ALTERNATIVES:
        for index, member in enumerate(members):
            src(2, f"{'if' if index == 0 else 'elif'} i == {index}:")
            src(3, f"cur = {src.ref(member, 'm')}")
            _decode_leaf(src, 3, member, "x")
            src(3, "d.number_of_bits = n")
            src(3, f"return ({_quote(member.name)}, x)")
    else:
        table = src.ref(tuple(members), "members")
        src(2, f"if i < {len(members)}:")
        src(3, f"cur = {table}[i]")
        src(3, "d.number_of_bits = n")
        src(3, "return (cur.name, cur.decode(d))")
    src(1, "except ErrorWithLocation as error:")
    src(2, "if cur is not None: error.add_location(cur)")
    src(2, "raise")
    src(1, "d.number_of_bits = n")
    src(1, f"raise DecodeError('Expected choice index {{}}, but got {{}}.'"
           f".format({me}.format_root_indexes(), i))")
    return src.build(node, "decode")


def _array_decoder(node: Any) -> Any:
    src = _Source()
    _prologue_decode(src)
    me = src.ref(node, "node")
    mode = node._fp_mode
    if mode == 1:
        src(1, "n0 = n")
        src(1, "n &= -8")
        src(1, "n -= 8")
        src(1, "if n < 0: _oob(d, n + 8)")
        src(1, "c = (v >> n) & 255")
        src(1, "if c > 127:")
        src(2, "d.number_of_bits = n0")
        src(2, f"return {me}._interpreted_decode(d)")
    elif mode == 2:
        _read_layout(src, 1, "c", node._fp_count_layout, node._fp_count_width, node.minimum)
    elif mode == 3:
        src(1, f"c = {node.minimum}")
    else:
        src(1, "d.number_of_bits = n")
        src(1, f"return {me}._interpreted_decode(d)")
        return src.build(node, "decode")
    src(1, "r = []")
    src(1, "tb = d.trim_below")
    src(1, "for _ in range(c):")
    src(2, "if n < tb:")
    src(3, "d.number_of_bits = n")
    src(3, "d.trim()")
    src(3, "v = d.value")
    src(3, "tb = d.trim_below")
    _decode_leaf(src, 2, node.element_type, "x")
    src(2, "r.append(x)")
    src(1, "d.number_of_bits = n")
    src(1, "return r")
    return src.build(node, "decode")


# --- encode --------------------------------------------------------------------------------


def _write(src: _Source, depth: int, value: str, width: int, acc: tuple = ("w", "k")) -> None:
    w, k = acc
    if width:
        src(depth, f"{w} = ({w} << {width}) | {value}")
        src(depth, f"{k} += {width}")


def _align_acc(src: _Source, depth: int, acc: tuple = ("w", "k")) -> None:
    w, k = acc
    src(depth, f"p = -{k} & 7")
    src(depth, f"{w} <<= p")
    src(depth, f"{k} += p")


def _write_layout(src: _Source, depth: int, value: str, layout: int, width: int,
                  acc: tuple = ("w", "k")) -> None:
    if layout != _BITS:
        _align_acc(src, depth, acc)
    _write(src, depth, value, width, acc)


def _call_encode(src: _Source, depth: int, node: Any, value: str, acc: tuple = ("w", "k")) -> None:
    w, k = acc
    name = src.ref(node, "m")
    if acc == ("w", "k"):
        src(depth, "e.value = w")
        src(depth, "e.number_of_bits = k")
        src(depth, f"{name}.encode({value}, e)")
        src(depth, "w = e.value")
        src(depth, "k = e.number_of_bits")
    else:
        # Into a sub-accumulator: through an Encoder of its own.
        src(depth, "se = Encoder()")
        src(depth, f"se.value = {w}")
        src(depth, f"se.number_of_bits = {k}")
        src(depth, f"{name}.encode({value}, se)")
        src(depth, f"{w} = se._whole()")
        src(depth, f"{k} = se.number_of_bits")


def _size_check(src: _Source, depth: int, node: Any, count: str, what: str) -> None:
    low, high = node._fp_low, node._fp_high
    tests = []
    if low is not None and low > 0:
        tests.append(f"{count} < {low}")
    if high is not None:
        tests.append(f"{count} > {high}")
    if tests:
        message = (f"Expected between {node._fp_low_text} and {node._fp_high_text} "
                   f"{what}, but got {{}}.")
        src(depth, f"if {' or '.join(tests)}:")
        src(depth + 1, f"raise ConstraintsError({message!r}.format({count}))")


def _write_length(src: _Source, depth: int, count: str, acc: tuple) -> None:
    """An aligned length determinant < 16384."""
    w, k = acc
    _align_acc(src, depth, acc)
    src(depth, f"if {count} < 128:")
    _write(src, depth + 1, count, 8, acc)
    src(depth, "else:")
    _write(src, depth + 1, f"(0x8000 | {count})", 16, acc)


def _encode_leaf(src: _Source, depth: int, node: Any, value: str,
                 acc: tuple = ("w", "k")) -> None:
    """Check and encode ``value`` as ``node`` into the accumulator ``acc``:
    inline when it is a simple leaf."""
    w, k = acc
    if isinstance(node, Boolean):
        src(depth, f"if {value} is True: {w} = ({w} << 1) | 1")
        src(depth, f"elif {value} is False: {w} <<= 1")
        src(depth, "else: raise EncodeError("
                   f"'Expected data of type bool, but got {{}}.'.format({value}))")
        src(depth, f"{k} += 1")
    elif isinstance(node, Null):
        src(depth, f"if {value} is not None: raise EncodeError("
                   f"'Expected None, but got {{}}.'.format({value}))")
    elif isinstance(node, Integer) and (node._fp_fast or node._fp_octets_bits is not None):
        src(depth, f"if {value}.__class__ is not int and not isinstance({value}, int):")
        src(depth + 1, "raise EncodeError("
                       f"'Expected data of type int or str, but got {{}}.'.format({value}))")
        low, high = node._fp_low, node._fp_high
        tests = ([f"{value} < {low}"] if low is not None else []) + (
            [f"{value} > {high}"] if high is not None else [])
        if tests:
            message = (f"Expected an integer between {node._fp_low_text} and "
                       f"{node._fp_high_text}, but got {{}}.")
            src(depth, f"if {' or '.join(tests)}:")
            src(depth + 1, f"raise ConstraintsError({message!r}.format({value}))")
        offset = f"({value} - {node.minimum})" if node.minimum else value
        if node._fp_fast:
            _write_layout(src, depth, offset, node._fp_layout, node._fp_width, acc)
        else:
            # asn1tools' Integer.encode with number_of_indefinite_bits: the
            # octet count (at least one) minus one, aligned, the octets.
            src(depth, f"y = {offset}")
            src(depth, "z = (y.bit_length() + 7) >> 3 or 1")
            _write(src, depth, "(z - 1)", node._fp_octets_bits, acc)
            _align_acc(src, depth, acc)
            src(depth, f"{w} = ({w} << (z << 3)) | y")
            src(depth, f"{k} += z << 3")
    elif isinstance(node, OctetString) and node._fp_mode:
        src(depth, f"if {value}.__class__ is not bytes and not isinstance({value}, (bytes, bytearray)):")
        src(depth + 1, "raise EncodeError('Expected data of type bytes or bytearray, "
                       f"but got {{}}.'.format({value}))")
        src(depth, f"z = len({value})")
        _size_check(src, depth, node, "z", "bytes")
        mode = node._fp_mode
        body = depth
        if mode == 1:
            src(depth, "if z >= 16384:")
            _call_encode(src, depth + 1, node, value, acc)
            src(depth, "else:")
            body = depth + 1
            _write_length(src, body, "z", acc)
        elif mode == 2:
            _write_layout(src, depth, f"(z - {node.minimum})" if node.minimum else "z",
                          node._fp_count_layout, node._fp_count_width, acc)
            _align_acc(src, depth, acc)
        elif mode == 4:
            _align_acc(src, depth, acc)
        src(body, "if z:")
        src(body + 1, f"{w} = ({w} << (z << 3)) | _FROM_BYTES({value}, 'big')")
        src(body + 1, f"{k} += z << 3")
    elif isinstance(node, _StringFast) and node._fp_mode:
        src(depth, f"if {value}.__class__ is not str and not isinstance({value}, str):")
        src(depth + 1, "raise EncodeError("
                       f"'Expected data of type str, but got {{}}.'.format({value}))")
        src(depth, f"z = len({value})")
        _size_check(src, depth, node, "z", "characters")
        if node._fp_refuse is not None:
            bad = src.ref(_regex(node._fp_refuse).search, "bad")
            src(depth, f"y = {bad}({value})")
            src(depth, "if y is not None:")
            src(depth + 1, "raise ConstraintsError('Expected a character in the permitted "
                           "alphabet, but got {!r} (0x{:02x}).'.format(y.group(), ord(y.group())))")
        mode = node._fp_mode
        body = depth
        if mode == 1:
            src(depth, "if z >= 16384:")
            _call_encode(src, depth + 1, node, value, acc)
            src(depth, "else:")
            body = depth + 1
            _write_length(src, body, "z", acc)
        elif mode == 2:
            _write_layout(src, depth, f"(z - {node.minimum})" if node.minimum else "z",
                          node._fp_count_layout, node._fp_count_width, acc)
            if node.maximum > 1:
                src(depth, "if z:")
                _align_acc(src, depth + 1, acc)
        elif mode == 4:
            _align_acc(src, depth, acc)
        coding = node._fp_coding
        if coding == _IDENTITY_8:
            src(body, "if z:")
            src(body + 1, f"{w} = ({w} << (z << 3)) | _FROM_BYTES({value}.encode('ascii'), 'big')")
            src(body + 1, f"{k} += z << 3")
        elif coding == _IDENTITY_16:
            src(body, "if z:")
            src(body + 1, f"{w} = ({w} << (z << 4)) | _FROM_BYTES({value}.encode('utf-16-be'), 'big')")
            src(body + 1, f"{k} += z << 4")
        else:
            bits = node.bits_per_character
            table = src.ref(node._fp_encode_map, "cmap")
            src(body, f"for y in {value}:")
            src(body + 1, f"{w} = ({w} << {bits}) | {table}[y]")
            src(body, f"{k} += z * {bits}")
    elif isinstance(node, ObjectIdentifier):
        src(depth, f"if {value}.__class__ is not str and not isinstance({value}, str):")
        src(depth + 1, "raise EncodeError("
                       f"'Expected data of type str, but got {{}}.'.format({value}))")
        src(depth, f"y = _OID_ENCODED.get({value})")
        src(depth, f"if y is None: y = _oid_encoded({value})")
        src(depth, "z = len(y)")
        src(depth, "if z > 127:")
        _call_encode(src, depth + 1, node, value, acc)
        src(depth, "else:")
        _align_acc(src, depth + 1, acc)
        src(depth + 1, f"{w} = ((({w} << 8) | z) << (z << 3)) | _FROM_BYTES(y, 'big')")
        src(depth + 1, f"{k} += 8 + (z << 3)")
    else:
        _call_encode(src, depth, node, value, acc)


def _members_encoder(node: Any) -> Any:
    src = _Source()
    me = src.ref(node, "node")
    src(0, "def f(data, e):")
    src(1, "if data.__class__ is not dict and not isinstance(data, dict):")
    src(2, "raise EncodeError('Expected data of type dict, but got {}.'.format(data))")
    src(1, "if e.number_of_bits > e.flush_above:")
    src(2, "e.flush()")
    src(1, "w = e.value")
    src(1, "k = e.number_of_bits")
    optionals = node.optionals
    count = len(optionals)
    additions = node.additions or []
    known = len(additions)
    extensible = node.additions is not None
    # Presence: bit K + count - 1 - j for optional j, bit K - 1 - i for addition i.
    presence_bit: dict[str, int] = {}
    defaults = []
    for index, member in enumerate(optionals):
        bit = 1 << (known + count - 1 - index)
        if member.optional:
            presence_bit[member.name] = bit
        else:
            defaults.append((member, bit))
    mandatory = 0
    for index, addition in enumerate(additions):
        bit = 1 << (known - 1 - index)
        if isinstance(addition, _per.AdditionGroup):
            for member in addition.root_members:
                presence_bit.setdefault(member.name, bit)
        else:
            presence_bit.setdefault(addition.name, bit)
        if node._addition_mandatory(addition):
            mandatory |= bit
    if len(presence_bit) > 4:
        table = src.ref(presence_bit, "presence")
        src(1, "bits = 0")
        src(1, "for y in data:")
        src(2, f"bits |= {table}.get(y, 0)")
    elif presence_bit:
        src(1, "bits = " + " | ".join(
            f"(({_quote(name)} in data) << {bit.bit_length() - 1})"
            for name, bit in presence_bit.items()))
    else:
        src(1, "bits = 0")
    for member, bit in defaults:
        key = _quote(member.name)
        src(1, f"if {key} in data and not {src.ref(member, 'm')}.is_default(data[{key}]):")
        src(2, f"bits |= {bit}")
    preamble = count + extensible
    if preamble:
        if known:
            src(1, f"pm = bits & {(1 << known) - 1}")
            src(1, f"pre = (bits >> {known}) | ((pm != 0) << {count})")
        else:
            src(1, f"pre = bits >> {known}")
        _write(src, 1, "pre", preamble)
    src(1, "cur = None")
    src(1, "try:")
    body = 2
    src(body, "pass")
    for member in node.root_members:
        key = _quote(member.name)
        ref = src.ref(member, "m")
        if member.optional:
            bit = presence_bit[member.name]
            src(body, f"if bits & {bit}:")
            src(body + 1, f"x = data[{key}]")
            src(body + 1, f"cur = {ref}")
            _encode_leaf(src, body + 1, member, "x")
        elif member.default is not None:
            bit = next(b for m, b in defaults if m is member)
            src(body, f"if bits & {bit}:")
            src(body + 1, f"x = data[{key}]")
            src(body + 1, f"cur = {ref}")
            _encode_leaf(src, body + 1, member, "x")
            src(body, f"elif {key} in data:")
            src(body + 1, f"cur = {ref}")
            src(body + 1, "# Not written, but checked (as asn1tools' checkers did).")
            src(body + 1, f"{ref}.encode(data[{key}], Encoder())")
        else:
            src(body, "try:")
            src(body + 1, f"x = data[{key}]")
            src(body, "except KeyError:")
            src(body + 1, "cur = None")
            message = f"{node.__class__.__name__} member '{member.name}' not found in {{}}."
            src(body + 1, f"raise EncodeError({message!r}.format(data)) from None")
            src(body, f"cur = {ref}")
            _encode_leaf(src, body, member, "x")
    if known:
        _additions_encoder(src, body, node, me, mandatory)
    src(1, "except ErrorWithLocation as error:")
    src(2, "if cur is not None: error.add_location(cur)")
    src(2, "raise")
    src(1, "e.value = w")
    src(1, "e.number_of_bits = k")
    return src.build(node, "encode")


def _additions_encoder(src: _Source, depth: int, node: Any, me: str, mandatory: int) -> None:
    """``codec._MembersFix.encode_additions`` (A1, A3) from the presence mask
    ``pm`` (bit K-1-i: addition i present)."""
    additions = node.additions
    known = len(additions)
    src(depth, "if pm:")
    inner = depth + 1
    src(inner, "cur = None")
    src(inner, "tz = (pm & -pm).bit_length() - 1")          # additions after the last present
    if mandatory:
        src(inner, f"y = ~pm & {mandatory} & ~((1 << tz) - 1)")
        src(inner, f"if y: raise {me}._fp_missing(y)")
    src(inner, f"c = {known} - tz")
    # Normally small length (X.691 10.9.3.4); asn1tools refuses more than 127.
    src(inner, "if c <= 64:")
    _write(src, inner + 1, "(c - 1)", 7)
    src(inner, "elif c <= 127:")
    _write(src, inner + 1, "(0x100 | c)", 9)
    src(inner, "else:")
    src(inner + 1, "raise NotImplementedError('Normally small length number >127 is not yet supported.')")
    src(inner, "w = (w << c) | (pm >> tz)")
    src(inner, "k += c")
    _align_acc(src, inner, ("w", "k"))
    for index, addition in enumerate(additions):
        bit = 1 << (known - 1 - index)
        src(inner, f"if pm & {bit}:")
        block = inner + 1
        ref = src.ref(addition, "a")
        src(block, f"cur = {ref}")
        if isinstance(addition, Boolean):
            # An open type of one octet: 01, then the bit.
            src(block, f"x = data[{_quote(addition.name)}]")
            src(block, "if x is True: w = (w << 16) | 0x180")
            src(block, "elif x is False: w = (w << 16) | 0x100")
            src(block, "else: raise EncodeError("
                       "'Expected data of type bool, but got {}.'.format(x))")
            src(block, "k += 16")
            continue
        if isinstance(addition, Null):
            # An open type of one zero octet (A1): 01 00.
            src(block, f"x = data[{_quote(addition.name)}]")
            src(block, "if x is not None: raise EncodeError("
                       "'Expected None, but got {}.'.format(x))")
            src(block, "w = (w << 16) | 0x100")
            src(block, "k += 16")
            continue
        if isinstance(addition, _per.AdditionGroup):
            src(block, "se = Encoder()")
            src(block, f"{ref}.encode_addition_group(data, se)")
            src(block, "sw = se._whole()")
            src(block, "sk = se.number_of_bits")
        else:
            src(block, f"x = data[{_quote(addition.name)}]")
            src(block, "sw = 0")
            src(block, "sk = 0")
            _encode_leaf(src, block, addition, "x", ("sw", "sk"))
        src(block, "w, k = _open_type(e, w, k, sw, sk)")


def _choice_encoder(node: Any) -> Any:
    src = _Source()
    me = src.ref(node, "node")
    base = src.ref(_codec.Choice.encode, "base")
    src(0, "def f(data, e):")
    src(1, "if data.__class__ is not tuple or len(data) != 2:")
    src(2, "data = _choice_parts(data)")
    src(1, "name, x = data")
    src(1, "if name.__class__ is not str and not isinstance(name, str):")
    src(2, "raise EncodeError('Expected data of type tuple(str, object), but got {}.'.format(data))")
    members = [node.root_index_to_member[i] for i in range(len(node.root_index_to_member))]
    extensible = node.additions_index_to_member is not None
    single = len(members) == 1
    if not single and node.number_of_indefinite_bits is not None:
        src(1, f"return {base}({me}, data, e)")
        return src.build(node, "encode")
    layout, width = (0, 0) if single else _layout(0, node.maximum)

    def write_index(depth: int, index: str) -> None:
        if layout in (0, _BITS):
            total = width + extensible
            if total:
                src(depth, f"w = (w << {total}) | {index}")
                src(depth, f"k += {total}")
        else:
            if extensible:
                src(depth, "w <<= 1")
                src(depth, "k += 1")
            _write_layout(src, depth, index, layout, width)

    src(1, "if e.number_of_bits > e.flush_above:")
    src(2, "e.flush()")
    src(1, "w = e.value")
    src(1, "k = e.number_of_bits")
    src(1, "cur = None")
    src(1, "try:")
    if len(members) <= _INLINE_ALTERNATIVES:
        for index, member in enumerate(members):
            src(2, f"{'if' if index == 0 else 'elif'} name == {_quote(member.name)}:")
            write_index(3, str(index))
            src(3, f"cur = {src.ref(member, 'm')}")
            _encode_leaf(src, 3, member, "x")
        src(2, "else:")
        src(3, f"return {base}({me}, data, e)")
    else:
        lookup = src.ref(node.root_name_to_index, "index")
        table = src.ref(tuple(members), "members")
        src(2, f"i = {lookup}.get(name)")
        src(2, "if i is None:")
        src(3, f"return {base}({me}, data, e)")
        write_index(2, "i")
        src(2, f"cur = {table}[i]")
        src(2, "e.value = w")
        src(2, "e.number_of_bits = k")
        src(2, "cur.encode(x, e)")
        src(2, "return")
    src(1, "except ErrorWithLocation as error:")
    src(2, "if cur is not None: error.add_location(cur)")
    src(2, "raise")
    src(1, "e.value = w")
    src(1, "e.number_of_bits = k")
    return src.build(node, "encode")


def _array_encoder(node: Any) -> Any:
    src = _Source()
    me = src.ref(node, "node")
    src(0, "def f(data, e):")
    src(1, "if data.__class__ is not list and not isinstance(data, list):")
    src(2, "raise EncodeError('Expected data of type list, but got {}.'.format(data))")
    src(1, "c = len(data)")
    low, high = node._fp_low, node._fp_high
    tests = ([f"c < {low}"] if low is not None and low > 0 else []) + (
        [f"c > {high}"] if high is not None else [])
    if tests:
        message = (f"Expected a list of between {node._fp_low_text} and {node._fp_high_text} "
                   f"elements, but got {{}}.")
        src(1, f"if {' or '.join(tests)}:")
        src(2, f"raise ConstraintsError({message!r}.format(c))")
    mode = node._fp_mode
    if mode == 0:
        src(1, f"return {me}._interpreted_encode(data, e)")
        return src.build(node, "encode")
    if mode == 1:
        src(1, "if c >= 16384:")
        src(2, f"return {me}._interpreted_encode(data, e)")
    src(1, "if e.number_of_bits > e.flush_above:")
    src(2, "e.flush()")
    src(1, "w = e.value")
    src(1, "k = e.number_of_bits")
    src(1, "fa = e.flush_above")
    if mode == 1:
        _write_length(src, 1, "c", ("w", "k"))
    elif mode == 2:
        _write_layout(src, 1, f"(c - {node.minimum})" if node.minimum else "c",
                      node._fp_count_layout, node._fp_count_width)
    src(1, "for x in data:")
    src(2, "if k > fa:")
    src(3, "e.value = w")
    src(3, "e.number_of_bits = k")
    src(3, "e.flush()")
    src(3, "w = e.value")
    src(3, "fa = e.flush_above")
    _encode_leaf(src, 2, node.element_type, "x")
    src(1, "e.value = w")
    src(1, "e.number_of_bits = k")
    return src.build(node, "encode")


# ---------------------------------------------------------------------------
# Compiled types and installation
# ---------------------------------------------------------------------------


class CompiledType(_per.CompiledType):
    """asn1tools' CompiledType on this module's Encoder/Decoder.

    ``encode`` checks types and constraints as it goes (A4).  asn1tools'
    checker trees are only used by :func:`install` and are not kept (they were
    a third of the pickle), so ``check_types``/``check_constraints`` (which
    ``Specification.encode``/``decode`` call on request) run the checking
    encoder and discard its output.
    """

    def encode(self, data):
        return bytearray(encode(self, data))

    def decode(self, data):
        return decode(self, data)

    def check_types(self, data):
        encode(self, data)

    def check_constraints(self, data):
        encode(self, data)


def encode(compiled: Any, data: Any) -> bytes:
    """Encode ``data`` with a compiled type of an installed spec."""
    encoder = Encoder()
    node = compiled._type
    try:
        node.encode(data, encoder)
    except ErrorWithLocation as error:
        error.add_location(node)
        raise
    return encoder.to_bytes()


def decode(compiled: Any, data: bytes) -> Any:
    """Decode ``data`` with a compiled type of an installed spec."""
    decoder = Decoder(data)
    node = compiled._type
    try:
        return node.decode(decoder)
    except ErrorWithLocation as error:
        error.add_location(node)
        raise


_REPLACEMENTS: dict[type, type] = {
    _codec.Sequence: Sequence,
    _codec.Set: Set,
    _codec.AdditionGroup: AdditionGroup,
    _codec.Choice: Choice,
    _per.SequenceOf: SequenceOf,
    _per.SetOf: SetOf,
    _per.Boolean: Boolean,
    _per.Null: Null,
    _per.Integer: Integer,
    _per.Enumerated: Enumerated,
    _per.OctetString: OctetString,
    _per.BitString: BitString,
    _per.ObjectIdentifier: ObjectIdentifier,
    _per.IA5String: IA5String,
    _per.BMPString: BMPString,
    _per.PrintableString: PrintableString,
    _per.NumericString: NumericString,
    _per.VisibleString: VisibleString,
    _per.UTF8String: UTF8String,
    _per.GeneralString: GeneralString,
    _per.GraphicString: GraphicString,
    _per.TeletexString: TeletexString,
    _per.UniversalString: UniversalString,
    _per.ObjectDescriptor: ObjectDescriptor,
    _per.Real: Real,
    _per.OpenType: OpenType,
}


# The constraints checker's class for each kind of node (asn1tools'
# constraints_checker.Compiler.compile_type), to be sure the two walks agree.
_CHECKER_KINDS: tuple = (
    (_per.MembersType, _cc.Dict),
    (_per.Choice, _cc.Choice),
    (_per.ArrayType, _cc.List),
    (_per.Integer, _cc.Integer),
    (_per.Boolean, _cc.Boolean),
    (_per.Null, _cc.Null),
    (_per.Enumerated, _cc.Enumerated),
    (_per.OctetString, _cc.Bytes),
    (_per.BitString, _cc.BitString),
    (_per.Real, _cc.Float),
    (_per.OpenType, _cc.Skip),
    (_per.ObjectIdentifier, _cc.String),
    (_per.KnownMultiplierStringType, _cc.String),
    (_per.StringType, _cc.String),
    (_per.UTF8String, _cc.String),
)


def _checker_matches(node: Any, checker: Any) -> bool:
    for kind, checker_kind in _CHECKER_KINDS:
        if isinstance(node, kind):
            return isinstance(checker, checker_kind)
    return False


def _checker_inner(checker: Any) -> Any:
    while isinstance(checker, _compiler.Recursive):
        checker = checker.inner
    return checker


def install(spec: Any) -> None:
    """Swap ``codec``'s fixed classes (and asn1tools' others) for ours.

    Run after ``codec._install_fixes``.  Walks each compiled type together
    with its constraints checker to copy the constraints onto the nodes, and
    precomputes each node's layout.  Refuses (TypeError) a node class it has
    no checked replacement for, so that no encoder can skip the checks.
    """
    seen: dict[int, Any] = {}
    stack = []
    for module in spec.modules.values():
        for compiled in module.values():
            if type(compiled) is _per.CompiledType:
                compiled.__class__ = CompiledType
            elif type(compiled) is not CompiledType:
                raise TypeError(f"fastper: unexpected compiled type {type(compiled).__name__}")
            stack.append((compiled._type, compiled.constraints_checker._type))
    while stack:
        node, checker = stack.pop()
        checker = _checker_inner(checker)
        if isinstance(node, _per.Recursive):
            stack.append((node._inner, checker))
            continue
        previous = seen.get(id(node))
        if previous is not None:
            if _constraints(previous[1]) != _constraints(checker):
                raise TypeError(f"fastper: node {node!r} reached with different constraints")
            continue
        cls = type(node)
        replacement = _REPLACEMENTS.get(cls)
        if replacement is None and cls not in _REPLACEMENTS.values():
            raise TypeError(f"fastper: no checked replacement for {cls.__name__} ({node.name})")
        if not _checker_matches(node, checker):
            raise TypeError(f"fastper: no matching constraints checker node for {node!r}")
        seen[id(node)] = (node, checker)
        if replacement is not None:
            node.__class__ = replacement
        node._fp_prepare(checker)
        if isinstance(node, _per.MembersType):
            by_name = {member.name: member for member in getattr(checker, "members", ())}
            for member in node.root_members:
                stack.append((member, by_name.get(member.name)))
            for addition in node.additions or ():
                if isinstance(addition, _per.AdditionGroup):
                    # The checker flattens groups: the group sees the parent's members.
                    stack.append((addition, checker))
                else:
                    stack.append((addition, by_name.get(addition.name)))
        elif isinstance(node, _per.Choice):
            by_name = getattr(checker, "name_to_member", {})
            for member in node.root_index_to_member.values():
                stack.append((member, by_name.get(member.name)))
            for member in (node.additions_index_to_member or {}).values():
                stack.append((member, by_name.get(member.name)))
        elif isinstance(node, _per.ArrayType):
            stack.append((node.element_type, getattr(checker, "element_type", None)))
    for module in spec.modules.values():
        for compiled in module.values():
            compiled.type_checker = compiled.constraints_checker = None


def _constraints(checker: Any) -> tuple:
    if checker is None:
        return (None,)
    return (type(checker).__name__, getattr(checker, "minimum", None),
            getattr(checker, "maximum", None), getattr(checker, "permitted_alphabet", None))
