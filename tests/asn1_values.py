"""Test helper: make valid values of any compiled ASN.1 type.

``full_value`` fills every optional component and every extension addition
(to a bounded depth), ``minimal_value`` only what is mandatory.  Values respect
the PER-visible constraints (ranges, sizes, permitted alphabets), so a codec
must round-trip them exactly.  A seed varies the choices and contents.
"""

from __future__ import annotations

import random

from asn1tools.codecs import per

from gatekeeper.h225 import codec


def compiled(type_name: str):
    return codec.specification().types[type_name]._type


_ALPHABETS: dict[int, list[str]] = {}


def _characters(node) -> list[str]:
    """The characters a string type may hold (kept readable), cached per type."""
    cached = _ALPHABETS.get(id(node))
    if cached is not None:
        return cached
    alphabet = node.permitted_alphabet
    if alphabet is not None and hasattr(alphabet, "encode_map"):
        chars = [chr(c) for c in sorted(alphabet.encode_map)]
        if len(chars) > 200:  # the whole default alphabet: keep it readable
            chars = [c for c in chars if c.isalnum() or c in " -_@."][:80]
    elif isinstance(node, per.BMPString):
        chars = list("abcXYZ 0123-_éü€")
    elif isinstance(node, per.PrintableString):
        chars = list("abcXYZ 0123-")
    else:
        chars = list("abcXYZ0123-_@.")
    _ALPHABETS[id(node)] = chars
    return chars


def _string(node, rng: random.Random, full: bool) -> str:
    chars = _characters(node)
    length = _size(node, rng, full, default=6)
    return "".join(rng.choice(chars) for _ in range(length))


def _size(node, rng: random.Random, full: bool, default: int) -> int:
    low = node.minimum if node.minimum is not None else 0
    high = node.maximum if node.maximum is not None else low + default
    if not full:
        return low if low > 0 else min(1, high)
    return rng.randint(low, min(high, low + default))


def make_value(node, rng: random.Random, full: bool, depth: int = 0):
    """A value of compiled type ``node``."""
    if isinstance(node, per.Recursive):
        node = node._inner
    if isinstance(node, per.MembersType):
        value = {}
        for member in node.root_members:
            if (member.optional or member.default is not None) and (not full or depth > 6):
                continue
            value[member.name] = make_value(member, rng, full, depth + 1)
        if node.additions and full and depth <= 6:
            for member in node.additions:
                value[member.name] = make_value(member, rng, full, depth + 1)
        elif node.additions:
            # Mandatory additions are left out: the form of an older sender.
            pass
        return value
    if isinstance(node, per.Choice):
        members = list(node.root_index_to_member.values())
        if full and node.additions_index_to_member:
            members += list(node.additions_index_to_member.values())
        if depth > 6:
            simple = [m for m in members if isinstance(m, (per.Null, per.Boolean, per.Integer))]
            members = simple or members[:1]
        member = rng.choice(members)
        return (member.name, make_value(member, rng, full, depth + 1))
    if isinstance(node, per.ArrayType):
        low = node.minimum if node.minimum is not None else 0
        if not full or depth > 6:
            count = low
        else:
            high = node.maximum if node.maximum is not None else low + 2
            count = max(low, min(high, rng.randint(1, 2)))
        return [make_value(node.element_type, rng, full, depth + 1) for _ in range(count)]
    if isinstance(node, per.Null):
        return None
    if isinstance(node, per.Boolean):
        return rng.choice([True, False])
    if isinstance(node, per.Integer):
        low = node.minimum if node.minimum is not None else -1000
        high = node.maximum if node.maximum is not None else 1000
        return rng.choice([low, high, rng.randint(low, high)])
    if isinstance(node, per.Enumerated):
        return rng.choice(list(node.root_index_to_data.values()))
    if isinstance(node, per.OctetString):
        return bytes(rng.randrange(256) for _ in range(_size(node, rng, full, 5)))
    if isinstance(node, per.BitString):
        bits = _size(node, rng, full, 12)
        value = rng.getrandbits(bits) if bits else 0
        data = value.to_bytes((bits + 7) // 8, "big") if bits else b""
        if bits % 8:
            data = (value << (8 - bits % 8)).to_bytes((bits + 7) // 8, "big")
        return (data, bits)
    if isinstance(node, per.ObjectIdentifier):
        return rng.choice(["0.0.8.2250.0.7", "1.2.840.113549.1.1.4", "0.0.8.235.0.3.43"])
    if isinstance(node, per.KnownMultiplierStringType):
        return _string(node, rng, full)
    raise TypeError(f"no value maker for {type(node).__name__}")


def full_value(type_name: str, seed: int = 0):
    return make_value(compiled(type_name), random.Random(seed), True)


def minimal_value(type_name: str, seed: int = 0):
    return make_value(compiled(type_name), random.Random(seed), False)


def ras_alternatives() -> list[str]:
    root, extension = codec.choice_alternatives("RasMessage")
    return list(root + extension)


def full_ras(kind: str, seed: int = 0):
    """A RasMessage of the given kind with everything filled in."""
    node = compiled("RasMessage")
    member = node.root_index_to_member.get(node.root_name_to_index.get(kind, -1))
    if member is None:
        member = node.additions_index_to_member[node.additions_name_to_index[kind]]
    return (kind, make_value(member, random.Random(seed), True, 1))


def minimal_ras(kind: str, seed: int = 0):
    node = compiled("RasMessage")
    member = node.root_index_to_member.get(node.root_name_to_index.get(kind, -1))
    if member is None:
        member = node.additions_index_to_member[node.additions_name_to_index[kind]]
    return (kind, make_value(member, random.Random(seed), False, 1))
