"""Aligned-PER codec for H.225.0 RAS messages and H323-UserInformation.

The ASN.1 modules in ``asn1/`` are compiled once with asn1tools and the
compiled form is cached as a pickle keyed by the modules' contents, so a
running gatekeeper pays ~0.2 s at start instead of ~2 s of compilation; the
cache is rebuilt by itself whenever an ``.asn`` file (or this compatibility
layer) changes.

Compatibility layer
-------------------
asn1tools 0.169.0 (pinned) gets four things wrong that matter for H.225.0,
whose every message is full of extension additions.  They are fixed here, in
our own subclasses of its per-codec classes, which replace the library's
classes in the compiled type tree (nothing in asn1tools itself is patched):

A1  An extension addition, or an extension alternative of a CHOICE, whose
    encoding is empty (a NULL, e.g. ``supportsAltGK`` or the reject reason
    ``securityDenial``) was written as an open type of length 0.  X.691
    requires at least one octet: it is now written ``01 00``.
A2  After decoding a known extension addition the decoder only skipped to the
    next octet, not to the end of the addition's open type, so a correctly
    encoded NULL addition (``01 00``) shifted every later addition.  The
    decoder now always continues exactly after the open type, and refuses an
    addition that overruns its own length.
A3  Leaving out an extension addition that the module marks mandatory made
    the encoder drop every later addition without a word.  The encoder now
    writes the additions up to the last present one (the form a sender of that
    version of the standard would use) and refuses, with an EncodeError naming
    it, a mandatory addition missing before a present one.
A4  Constraints were only checked on request; out-of-range values failed
    later with unrelated errors or were silently mangled.  Encoding always
    checks types and constraints.

Unknown extensions from newer peers: unknown SEQUENCE additions are skipped;
an unknown CHOICE alternative decodes as ``("?extension-N", raw_bytes)`` (N is
its extension index) and encodes back to the same bytes, so it can be relayed
or answered, never mistaken for a known alternative.

Every failure surfaces as :class:`gatekeeper.errors.DecodeError` or
:class:`gatekeeper.errors.EncodeError`; nothing above this module sees
asn1tools.

Speed
-----
At run time the compiled tree does not use asn1tools' own (slow) PER runtime:
``fastper`` swaps in subclasses of the classes above (and of asn1tools'
others) with their own Decoder/Encoder, and checks types and constraints
inline while encoding (A4, one pass instead of three).  asn1tools remains the
compiler.  See ``fastper``'s docstring; ``tests/test_fastper.py`` checks it
against plain asn1tools with these fixes, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _import_asn1tools() -> Any:
    """``import asn1tools``, without the ~0.12 s of prompt_toolkit.

    asn1tools/__init__.py imports prompt_toolkit, when installed, only for its
    interactive ``asn1tools shell`` command, which we never use; it falls back
    cleanly when the import fails.  A None entry in sys.modules makes that
    import fail; the entry is removed again at once, so anyone else can still
    import prompt_toolkit.  (asn1tools' own shell would then be unavailable in
    this process; nothing here uses it.)
    """
    if "asn1tools" in sys.modules or "prompt_toolkit" in sys.modules:
        import asn1tools
        return asn1tools
    sys.modules["prompt_toolkit"] = None  # type: ignore[assignment]
    try:
        import asn1tools
    finally:
        if sys.modules.get("prompt_toolkit", 0) is None:
            del sys.modules["prompt_toolkit"]
    return asn1tools


asn1tools = _import_asn1tools()
from asn1tools.codecs import per as _per  # noqa: E402

from gatekeeper.errors import DecodeError, EncodeError

__all__ = [
    "decode_ras",
    "encode_ras",
    "decode_uuie",
    "encode_uuie",
    "decode",
    "encode",
    "specification",
    "ASN1_FILES",
    "UNKNOWN_ALTERNATIVE_PREFIX",
]

ASN1_DIR = Path(__file__).resolve().parent / "asn1"
ASN1_FILES = tuple(ASN1_DIR / name for name in ("h225.asn", "h235.asn", "h245.asn"))

#: Name given to a CHOICE extension alternative this codec does not know.
UNKNOWN_ALTERNATIVE_PREFIX = "?extension-"

# Bump when the compatibility classes below change in a way that alters the
# compiled (pickled) form, so stale caches are not reused.
_LAYER_VERSION = "3"  # 3: fastper's classes and layouts, no checker trees

# The pickle holds instances of classes defined here and in fastper, with
# attributes computed by them: their source is part of the cache key too, so
# that editing either never loads a stale layout.
_LAYER_SOURCES = (Path(__file__).resolve(), Path(__file__).resolve().parent / "fastper.py")

# Largest input we try to decode.  A RAS datagram is far smaller; the cap
# keeps the decoder from doing unbounded work on garbage.
MAX_MESSAGE_SIZE = 65535


# ---------------------------------------------------------------------------
# The compatibility layer (A1, A2, A3)
# ---------------------------------------------------------------------------


def _pad_empty(encoder: _per.Encoder) -> None:
    """X.691: an open type's contents are at least one octet (A1)."""
    encoder.align_always()
    if encoder.number_of_bytes() == 0:
        encoder.append_non_negative_binary_integer(0, 8)


class _MembersFix:
    """Extension-addition handling for SEQUENCE and SET (A1, A2, A3)."""

    def encode_additions(self, data: dict, encoder: _per.Encoder) -> bool:
        additions = self.additions
        last_present = -1
        for index, addition in enumerate(additions):
            if self._addition_present(addition, data):
                last_present = index
        if last_present < 0:
            return False

        count = last_present + 1
        for addition in additions[:count]:
            if not self._addition_present(addition, data) and self._addition_mandatory(addition):
                raise _per.EncodeError(
                    f"{self.type_name} extension addition '{addition.name}' is mandatory "
                    f"once a later addition is present"
                )

        presence = 0
        encoded = []
        for addition in additions[:count]:
            presence <<= 1
            if not self._addition_present(addition, data):
                continue
            presence |= 1
            sub = encoder.__class__()
            if isinstance(addition, _per.AdditionGroup):
                addition.encode_addition_group(data, sub)
            else:
                self.encode_member(addition, data, sub, encode_default=True)
            _pad_empty(sub)
            encoded.append(sub)

        encoder.append_normally_small_length(count)
        encoder.append_non_negative_binary_integer(presence, count)
        encoder.align()
        for sub in encoded:
            encoder.append_length_determinant(sub.number_of_bytes())
            encoder += sub
        return True

    @staticmethod
    def _addition_present(addition: Any, data: dict) -> bool:
        if isinstance(addition, _per.AdditionGroup):
            return any(member.name in data for member in addition.root_members)
        return addition.name in data

    @staticmethod
    def _addition_mandatory(addition: Any) -> bool:
        if isinstance(addition, _per.AdditionGroup):
            return any(not (m.optional or m.default is not None) for m in addition.root_members)
        return not (addition.optional or addition.default is not None)

    def decode_additions(self, decoder: _per.Decoder) -> dict:
        length = decoder.read_normally_small_length()
        presence = decoder.read_non_negative_binary_integer(length)
        decoder.align()
        decoded: dict = {}
        additions = self.additions
        for index in range(length):
            if not presence & (1 << (length - index - 1)):
                continue
            size = 8 * decoder.read_length_determinant()
            start = decoder.number_of_bits
            if index < len(additions):
                addition = additions[index]
                try:
                    if isinstance(addition, _per.AdditionGroup):
                        decoded.update(addition.decode(decoder))
                    else:
                        decoded[addition.name] = addition.decode(decoder)
                except _per.ErrorWithLocation as error:
                    error.add_location(addition)
                    raise
                used = start - decoder.number_of_bits
                if used > size:
                    raise _per.DecodeError(
                        f"extension addition '{addition.name}' overruns its open type"
                    )
                decoder.skip_bits(size - used)
            else:
                decoder.skip_bits(size)
        return decoded


class Sequence(_MembersFix, _per.Sequence):
    """asn1tools' SEQUENCE with the extension fixes."""


class Set(_MembersFix, _per.Set):
    """asn1tools' SET with the extension fixes."""


class AdditionGroup(_MembersFix, _per.AdditionGroup):
    """asn1tools' extension addition group with the extension fixes."""


class Choice(_per.Choice):
    """asn1tools' CHOICE: non-empty extension alternatives (A1), unknown ones kept."""

    def encode(self, data: Any, encoder: _per.Encoder) -> None:
        name = data[0]
        if isinstance(name, str) and name.startswith(UNKNOWN_ALTERNATIVE_PREFIX):
            if self.additions_index_to_member is None:
                raise _per.EncodeError(f"CHOICE {self.name} has no extension marker")
            try:
                index = int(name[len(UNKNOWN_ALTERNATIVE_PREFIX):])
            except ValueError:
                raise _per.EncodeError(f"bad unknown alternative name {name!r}") from None
            raw = bytes(data[1])
            if not raw:
                raw = b"\x00"
            encoder.append_bit(1)
            encoder.append_normally_small_non_negative_whole_number(index)
            encoder.align()
            encoder.append_length_determinant(len(raw))
            encoder.append_bytes(raw)
            return
        super().encode(data, encoder)

    def encode_additions(self, data: Any, encoder: _per.Encoder) -> None:
        try:
            index = self.additions_name_to_index[data[0]]
        except KeyError:
            raise _per.EncodeError(
                f"Expected choice {self.format_names()}, but got '{data[0]}'."
            ) from None
        addition = self.additions_index_to_member[index]
        sub = encoder.__class__()
        try:
            addition.encode(data[1], sub)
        except _per.ErrorWithLocation as error:
            error.add_location(addition)
            raise
        _pad_empty(sub)
        encoder.append_normally_small_non_negative_whole_number(index)
        encoder.align()
        encoder.append_length_determinant(sub.number_of_bytes())
        encoder += sub

    def decode_additions(self, decoder: _per.Decoder) -> tuple:
        index = decoder.read_normally_small_non_negative_whole_number()
        decoder.align()
        size = 8 * decoder.read_length_determinant()
        addition = self.additions_index_to_member.get(index)
        if addition is None:
            raw = decoder.read_bits(size)
            return (f"{UNKNOWN_ALTERNATIVE_PREFIX}{index}", bytes(raw))
        start = decoder.number_of_bits
        try:
            value = addition.decode(decoder)
        except _per.ErrorWithLocation as error:
            error.add_location(addition)
            raise
        used = start - decoder.number_of_bits
        if used > size:
            raise _per.DecodeError(f"extension alternative '{addition.name}' overruns its open type")
        decoder.skip_bits(size - used)
        return (addition.name, value)


_REPLACEMENTS = {
    _per.Sequence: Sequence,
    _per.Set: Set,
    _per.AdditionGroup: AdditionGroup,
    _per.Choice: Choice,
}


def compiled_nodes(spec: Any) -> Iterator[Any]:
    """Every node of the compiled type tree, once each (recursive types included)."""
    seen: set[int] = set()
    stack = [
        compiled._type
        for module in spec.modules.values()
        for compiled in module.values()
    ]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for attribute in ("root_members", "additions"):
            stack.extend(getattr(node, attribute, None) or ())
        for attribute in ("root_index_to_member", "additions_index_to_member"):
            stack.extend((getattr(node, attribute, None) or {}).values())
        for attribute in ("element_type", "_inner"):  # _inner: a Recursive reference
            child = getattr(node, attribute, None)
            if child is not None:
                stack.append(child)


def _install_fixes(spec: Any) -> None:
    """Swap the library's classes for ours throughout the compiled type tree."""
    for node in compiled_nodes(spec):
        replacement = _REPLACEMENTS.get(type(node))
        if replacement is not None:
            node.__class__ = replacement


# ---------------------------------------------------------------------------
# Compilation and its cache
# ---------------------------------------------------------------------------


def _sources_digest() -> str:
    digest = hashlib.sha256()
    digest.update(f"asn1tools={asn1tools.__version__};layer={_LAYER_VERSION}".encode())
    for path in _LAYER_SOURCES + tuple(ASN1_FILES):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _cache_dir() -> Path:
    """A directory only this user can write, for the compiled-spec pickle.

    Loading a pickle runs code, so the directory must not be writable by
    anyone else: ``$GATEKEEPER_CACHE_DIR``, else ``$XDG_CACHE_HOME/gatekeeper``
    (``~/.cache/gatekeeper``), else a per-user directory in the temp dir.
    """
    explicit = os.environ.get("GATEKEEPER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidate = Path(base) / "gatekeeper"
    try:
        candidate.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"gatekeeper-cache-{os.getuid()}"


def _safe_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _compile() -> Any:
    spec = asn1tools.compile_files([str(p) for p in ASN1_FILES], "per")
    _install_fixes(spec)
    fastper.install(spec)  # the fast runtime classes, on top of the fixes
    return spec


def _load_specification() -> Any:
    directory = _cache_dir()
    cache = directory / f"h225-{_sources_digest()}.pickle"
    usable = _safe_dir(directory)
    if usable and cache.exists():
        try:
            with cache.open("rb") as handle:
                return pickle.load(handle)
        except Exception:  # a truncated or stale cache: rebuild it below
            pass
    spec = _compile()
    if usable:
        try:
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".h225-")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(spec, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, cache)
        except OSError:
            pass
    return spec


_SPEC: Any = None


def specification() -> Any:
    """The compiled asn1tools specification (compiled or loaded on first use)."""
    global _SPEC
    if _SPEC is None:
        _SPEC = _load_specification()
    return _SPEC


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _peek_kind(spec: Any, type_name: str, data: bytes) -> str | None:
    """Name of the top-level CHOICE alternative, when it can be read."""
    compiled = spec.types.get(type_name)
    node = getattr(compiled, "_type", None)
    if not isinstance(node, _per.Choice) or not data:
        return None
    try:
        decoder = _per.Decoder(bytearray(data[:4]))
        if node.additions_index_to_member is not None and decoder.read_bit():
            index = decoder.read_normally_small_non_negative_whole_number()
            member = node.additions_index_to_member.get(index)
        else:
            index = node.decode_root_index(decoder)
            member = node.root_index_to_member.get(index)
        return member.name if member is not None else None
    except Exception:
        return None


def decode(type_name: str, data: bytes) -> Any:
    """Decode ``data`` as the named ASN.1 type; only DecodeError escapes."""
    spec = specification()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise DecodeError("empty message")
    if len(data) > MAX_MESSAGE_SIZE:
        raise DecodeError(f"message of {len(data)} bytes is too large")
    try:
        return fastper.decode(spec.types[type_name], data)
    except KeyError as error:
        if type_name not in spec.types:
            raise DecodeError(f"unknown ASN.1 type {type_name}") from None
        raise DecodeError(f"bad value ({error})", _peek_kind(spec, type_name, data)) from None
    except RecursionError:
        raise DecodeError("nesting too deep", _peek_kind(spec, type_name, data)) from None
    except Exception as error:  # asn1tools raises many kinds; none may escape
        reason = _short_reason(error)
        raise DecodeError(reason, _peek_kind(spec, type_name, data)) from None


def encode(type_name: str, value: Any) -> bytes:
    """Encode ``value`` as the named ASN.1 type; only EncodeError escapes."""
    spec = specification()
    kind = value[0] if isinstance(value, tuple) and value and isinstance(value[0], str) else None
    if type_name not in spec.types:
        raise EncodeError(f"unknown ASN.1 type {type_name}")
    try:
        # fastper's encoders check types and constraints as they write (A4),
        # including around an unknown alternative relayed as raw bytes.
        return fastper.encode(spec.types[type_name], value)
    except Exception as error:
        raise EncodeError(_short_reason(error), kind) from None


def _short_reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, _per.OutOfDataError) or "out of data" in text.lower():
        text = "truncated: " + text
    first = text.splitlines()[0]
    return first[:200]


def decode_ras(data: bytes) -> tuple[str, dict]:
    """Decode one RAS datagram into ``(message_name, fields)``."""
    return decode("RasMessage", data)


def encode_ras(message: tuple[str, dict]) -> bytes:
    """Encode ``(message_name, fields)`` as one RAS datagram."""
    return encode("RasMessage", message)


def decode_uuie(data: bytes) -> dict:
    """Decode the H323-UserInformation carried in a Q.931 User-user IE."""
    return decode("H323-UserInformation", data)


def encode_uuie(value: dict) -> bytes:
    """Encode an H323-UserInformation for a Q.931 User-user IE."""
    return encode("H323-UserInformation", value)


def choice_alternatives(type_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (root, extension) alternative names of a named CHOICE type."""
    node = specification().types[type_name]._type
    if not isinstance(node, _per.Choice):
        raise TypeError(f"{type_name} is not a CHOICE")
    root = tuple(member.name for member in node.root_index_to_member.values())
    extension = tuple(
        member.name for member in (node.additions_index_to_member or {}).values()
    )
    return root, extension


def null_alternatives(type_name: str) -> frozenset[str]:
    """Names of the alternatives of a named CHOICE whose type is NULL."""
    node = specification().types[type_name]._type
    members = list(node.root_index_to_member.values())
    members += list((node.additions_index_to_member or {}).values())
    return frozenset(m.name for m in members if isinstance(m, _per.Null))


# At the end: fastper subclasses the classes defined above.
from gatekeeper.h225 import fastper  # noqa: E402
