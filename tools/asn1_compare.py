#!/usr/bin/env python3
"""Compare our ASN.1 modules with an independent compilation of the ITU-T text.

Development tool and importable module.  Our modules live in
``gatekeeper/h225/asn1/*.asn`` (H323-MESSAGES, H235-SECURITY-MESSAGES and
the part of MULTIMEDIA-SYSTEM-CONTROL that H.225.0 needs).  The reference is
pycrate's ``pycrate_asn1dir.H225``, compiled by pycrate from the ITU-T H.225.0
version 7 ASN.1 (it contains all three modules).  pycrate is a test-only
oracle: nothing here is shipped.

For every type defined in our files (module by module) the tool builds a
normalised description of both versions and lists every difference in what
determines the PER encoding:

* the kind of type (SEQUENCE, CHOICE, INTEGER, BMPString, ...) and, for a
  reference, the referenced type (module and name);
* SEQUENCE/SET components: names and order, OPTIONAL, DEFAULT value, root
  component or extension addition (and extension group), the extension
  marker; CHOICE alternatives likewise; ENUMERATED items, their values and
  root/extension; named bits of BIT STRING;
* INTEGER value constraints, SIZE constraints (strings, OCTET/BIT STRING,
  SEQUENCE OF/SET OF) and permitted alphabets FROM(...), including their
  extensibility;
* nested anonymous types, recursively, and instances of parameterized types
  (SIGNED{...}, ENCRYPTED{...}, HASHED{...}), expanded.

It also reports types of the reference modules that are reachable from the
types we define or import but that our files lack, types we define that the
reference does not have, types of an imported module that nothing loaded
needs any more, and imports that do not resolve.

Constraints are compared as *effective* constraints: a reference without a
constraint of its own inherits that of the referenced type (pycrate resolves
them the same way).  Where a reference carries a constraint of its own, ours
is taken to replace the inherited one rather than being intersected with it.

Known equivalence: an open type ``TYPE-IDENTIFIER.&Type(X)``, which
asn1tools cannot compile, is accepted as matching an unconstrained
``OCTET STRING`` (aligned PER encodes both the same way).

Usage::

    python tools/asn1_compare.py [MODULE ...] [--files F.asn ...] [--full MODULE]

With no MODULE every module found in the files is checked.  Differences are
printed one per line, followed by their count; the exit status is 1 if there
is any difference, 0 otherwise.  From Python: ``compare(module_names=None,
files=None) -> list[str]``.
"""

import argparse
import functools
import os
import sys

import asn1tools

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASN1_DIR = os.path.join(ROOT, 'gatekeeper', 'h225', 'asn1')
DEFAULT_FILE_NAMES = ('h225.asn', 'h235.asn', 'h245.asn')

# Built-in types as asn1tools spells them in its parse tree.
BUILTIN_TYPES = frozenset([
    'ANY', 'ANY DEFINED BY', 'BIT STRING', 'BMPString', 'BOOLEAN',
    'CHARACTER STRING', 'CHOICE', 'DATE', 'DATE-TIME', 'DURATION',
    'EMBEDDED PDV', 'ENUMERATED', 'EXTERNAL', 'GeneralString',
    'GeneralizedTime', 'GraphicString', 'IA5String', 'INTEGER',
    'ISO646String', 'NULL', 'NumericString', 'OBJECT IDENTIFIER',
    'OCTET STRING', 'ObjectDescriptor', 'PrintableString', 'REAL',
    'RELATIVE-OID', 'SEQUENCE', 'SEQUENCE OF', 'SET', 'SET OF',
    'T61String', 'TIME-OF-DAY', 'TeletexString', 'UTCTime', 'UTF8String',
    'UniversalString', 'VideotexString', 'VisibleString',
])

CONSTRUCTED = ('SEQUENCE', 'SET', 'CHOICE')
LISTS = ('SEQUENCE OF', 'SET OF')
SIZED = ('BIT STRING', 'OCTET STRING', 'SEQUENCE OF', 'SET OF')
OPEN_TYPE = 'OPEN_TYPE'


def default_files():
    """The module files of the package that exist now."""
    paths = [os.path.join(ASN1_DIR, name) for name in DEFAULT_FILE_NAMES]
    return [path for path in paths if os.path.exists(path)]


def is_string_kind(kind):
    return kind.endswith('String')


# ---------------------------------------------------------------------------
# Normalised constraints.
#
# A constraint set is (root, extensible, additions), root and additions
# being tuples of disjoint, sorted, merged (lower, upper) intervals, with
# None for MIN/MAX.  An alphabet is (characters, extensible, additions) with
# characters as sorted strings.

class NotUnderstood(Exception):
    pass


def _bound(value):
    if value is None or value in ('MIN', 'MAX'):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotUnderstood(value)


def _merge(intervals):
    def key(item):
        lower, upper = item
        return (float('-inf') if lower is None else lower,
                float('inf') if upper is None else upper)

    merged = []
    for lower, upper in sorted(intervals, key=key):
        if merged:
            last_lower, last_upper = merged[-1]
            if last_upper is None or (lower is not None
                                      and lower <= last_upper + 1):
                if last_upper is not None and (upper is None
                                               or upper > last_upper):
                    merged[-1] = (last_lower, upper)
                continue
        merged.append((lower, upper))
    return tuple(merged)


def _chars(intervals):
    chars = set()
    for lower, upper in intervals:
        for code in range(ord(lower), ord(upper) + 1):
            chars.add(chr(code))
    return ''.join(sorted(chars))


def format_set(constraint):
    if constraint is None:
        return 'none'
    root, extensible, additions = constraint

    def interval(item):
        if isinstance(item, str):
            return item
        lower, upper = item
        lower = 'MIN' if lower is None else lower
        upper = 'MAX' if upper is None else upper
        return str(lower) if lower == upper else '{}..{}'.format(lower, upper)

    parts = [interval(item) for item in root]
    if extensible:
        parts.append('...')
        parts.extend(interval(item) for item in additions)
    return '(' + ', '.join(parts) + ')'


def format_alphabet(constraint):
    if constraint is None:
        return 'none'
    chars, extensible, additions = constraint
    text = 'FROM({!r}'.format(chars)
    if extensible:
        text += ', ...'
        if additions:
            text += ', {!r}'.format(additions)
    return text + ')'


# Ours (asn1tools parse tree).

def _ours_set(items):
    if items is None:
        return None
    root, additions, extensible = [], [], False
    try:
        for item in items:
            if item is None:
                extensible = True
                continue
            if isinstance(item, tuple):
                interval = (_bound(item[0]), _bound(item[1]))
            else:
                interval = (_bound(item), _bound(item))
            (additions if extensible else root).append(interval)
    except NotUnderstood:
        # E.g. a value reference as a bound: not resolved by this tool.
        return (('<not understood: {!r}>'.format(items),), False, ())
    return (_merge(root), extensible, _merge(additions))


def _ours_alphabet(items):
    if items is None:
        return None
    root, additions, extensible = [], [], False
    for item in items:
        if item is None:
            extensible = True
            continue
        if not (isinstance(item, tuple) and len(item) == 2):
            # asn1tools turns e.g. FROM("abc", ...) into a stray '.' item.
            return ('<not understood by asn1tools: {!r}>'.format(items),
                    False, '')
        (additions if extensible else root).append(item)
    return (_chars(root), extensible, _chars(additions))


# Reference (pycrate ASN1Set).

def _py_intervals(items):
    intervals = []
    for item in items:
        if hasattr(item, 'lb'):
            intervals.append((item.lb, item.ub))
        else:
            intervals.append((item, item))
    return intervals


def _py_set(asn1set):
    if asn1set is None:
        return None
    root = _merge(_py_intervals(asn1set.root))
    if asn1set.ext is None:
        return (root, False, ())
    return (root, True, _merge(_py_intervals(asn1set.ext)))


def _py_alphabet(asn1set):
    if asn1set is None:
        return None

    def chars(items):
        intervals = []
        for item in items:
            if hasattr(item, 'lb'):
                intervals.append((item.lb, item.ub))
            else:
                for char in item:
                    intervals.append((char, char))
        return _chars(intervals)

    if asn1set.ext is None:
        return (chars(asn1set.root), False, '')
    return (chars(asn1set.root), True, chars(asn1set.ext))


# ---------------------------------------------------------------------------
# Normalised type descriptions ("nodes"): plain dicts with the keys
#   kind      the type's base kind ('SEQUENCE', 'INTEGER', ...)
#   ref       'MODULE.Type' when the type is a reference, else None
#   value     INTEGER value constraint, size, alphabet: see above
#   extensible (SEQUENCE, SET, CHOICE, ENUMERATED) extension marker present
#   members   list of dicts: name, node, optional, default, addition, group
#   items     ENUMERATED: list of (name, number, addition)
#   element   SEQUENCE OF / SET OF element node
#   bits      named bits: list of (name, number)
# The structure of a referenced type is described where that type is
# defined; only instances of parameterized types are expanded in place.

def _empty_node(kind, ref=None):
    return {'kind': kind, 'ref': ref, 'value': None, 'size': None,
            'alphabet': None, 'extensible': None, 'members': None,
            'items': None, 'element': None, 'bits': None}


def _qualified(module, name):
    return '{}.{}'.format(module, name)


class Ours(object):
    """Our modules, from the asn1tools parse tree."""

    def __init__(self, parsed):
        self.parsed = parsed
        self.problems = []          # (module, message)

    def modules(self):
        return list(self.parsed)

    def types(self, module):
        return self.parsed[module]['types']

    def imports(self, module):
        result = {}
        for source, names in self.parsed[module].get('imports', {}).items():
            result[source] = [name for name in names
                              if name not in ('{', '}')]
        return result

    def resolve(self, module, name):
        """(module, name) of the type that name denotes in module, or None."""
        if module in self.parsed and name in self.types(module):
            return (module, name)
        for source, names in self.imports(module).items():
            if name in names:
                return (source, name)
        return None

    def definition(self, module, name):
        if module in self.parsed:
            return self.types(module).get(name)
        return None

    def _target(self, raw, module, env, seen=()):
        """Follow references: (raw definition, module, env) of the base."""
        name = raw['type']
        if name in env:
            if env[name] is None:
                return None, module, env
            actual, actual_module, actual_env = env[name]
            return self._target(actual, actual_module, actual_env, seen)
        if name in BUILTIN_TYPES:
            return raw, module, env
        target = self.resolve(module, name)
        if target is None or target in seen:
            return None, module, env
        definition = self.definition(*target)
        if definition is None:
            return None, target[0], env
        return self._target(definition, target[0], {}, seen + (target,))

    def _effective(self, raw, module, env, key, seen=()):
        """A constraint (raw parse tree form) after inheritance."""
        if key in raw:
            return raw[key]
        name = raw['type']
        if name in env:
            if env[name] is None:
                return None
            actual, actual_module, actual_env = env[name]
            return self._effective(actual, actual_module, actual_env, key,
                                   seen)
        if name in BUILTIN_TYPES:
            return None
        target = self.resolve(module, name)
        if target is None or target in seen:
            return None
        definition = self.definition(*target)
        if definition is None:
            return None
        return self._effective(definition, target[0], {}, key,
                               seen + (target,))

    def node(self, raw, module, env=None):
        env = env or {}
        name = raw['type']
        if name in env and not raw.get('actual-parameters'):
            if env[name] is None:
                return _empty_node('PARAMETER', name)
            actual, actual_module, actual_env = env[name]
            return self.node(actual, actual_module, actual_env)
        if name in BUILTIN_TYPES:
            node = _empty_node(name)
            self._structure(node, raw, module, env)
        else:
            target = self.resolve(module, name)
            if target is None:
                self.problems.append(
                    (module, 'unresolved reference to {!r}'.format(name)))
                return _empty_node('UNRESOLVED', name)
            base, base_module, base_env = self._target(raw, module, env)
            kind = base['type'] if base is not None else 'UNRESOLVED'
            if base is not None and base['type'] not in BUILTIN_TYPES:
                kind = 'PARAMETER'
            node = _empty_node(kind, _qualified(*target))
            definition = self.definition(*target)
            if definition is not None and 'parameters' in definition:
                # Instance of a parameterized type: expand it here.
                actuals = raw.get('actual-parameters', [])
                inner_env = {}
                for dummy, actual in zip(definition['parameters'], actuals):
                    inner_env[dummy] = (actual, module, env)
                self._structure(node, definition, target[0], inner_env)
        for key, attribute, convert in (
                ('restricted-to', 'value', _ours_set),
                ('size', 'size', _ours_set),
                ('from', 'alphabet', _ours_alphabet)):
            node[attribute] = convert(
                self._effective(raw, module, env, key))
        if node['kind'] != 'INTEGER':
            node['value'] = None
        return node

    def _structure(self, node, raw, module, env):
        kind = raw['type']
        implied = self.parsed.get(module, {}).get('extensibility-implied')
        if kind in CONSTRUCTED:
            members = []
            state = 'root'
            group = 0
            extensible = False

            def add(member, addition, group_number):
                if 'tag' in member:
                    self.problems.append(
                        (module, 'explicit tag on {!r}: the comparison '
                                 'assumes automatic tags'.format(
                                     member['name'])))
                entry = {
                    'name': member['name'],
                    'node': self.node(member, module, env),
                    'optional': bool(member.get('optional')),
                    'default': member.get('default'),
                    'addition': addition,
                    'group': group_number,
                }
                members.append(entry)

            for member in raw.get('members', []):
                if member is None:
                    extensible = True
                    state = 'extension' if state == 'root' else 'root'
                    continue
                if isinstance(member, list):
                    group += 1
                    for item in member:
                        if item is not None:
                            add(item, state == 'extension', group)
                    continue
                if 'components-of' in member:
                    self.problems.append(
                        (module, 'COMPONENTS OF is not supported by the '
                                 'comparison'))
                    continue
                add(member, state == 'extension', None)
            node['members'] = members
            node['extensible'] = extensible or bool(implied)
        elif kind == 'ENUMERATED':
            items = []
            addition = False
            for item in raw.get('values', []):
                if item is None:
                    addition = True
                    continue
                items.append((item[0], item[1], addition))
            node['items'] = items
            node['extensible'] = addition or bool(implied)
        elif kind in LISTS:
            node['element'] = self.node(raw['element'], module, env)
        elif kind == 'BIT STRING' and raw.get('named-bits'):
            node['bits'] = [(bit[0], int(bit[1]))
                            for bit in raw['named-bits']]

    def references(self, module, name):
        """Every (module, name) that the definition of name mentions."""
        found = set()

        def walk(raw, env):
            if isinstance(raw, list):
                for item in raw:
                    if item is not None:
                        walk(item, env)
                return
            if not isinstance(raw, dict):
                return
            type_name = raw.get('type')
            if (type_name and type_name not in BUILTIN_TYPES
                    and type_name not in env):
                target = self.resolve(module, type_name)
                if target is not None:
                    found.add(target)
            for key in ('members', 'actual-parameters'):
                if key in raw:
                    walk(raw[key], env)
            if 'element' in raw:
                walk(raw['element'], env)

        definition = self.definition(module, name)
        if definition is not None:
            walk(definition, set(definition.get('parameters', [])))
        return found


class Reference(object):
    """The reference modules, from pycrate's compiled H.225.0 objects."""

    def __init__(self):
        from pycrate_asn1dir import H225
        from pycrate_asn1rt.refobj import ASN1RefClassField, ASN1RefType

        self._reftype = ASN1RefType
        self._classfield = ASN1RefClassField
        self.classes = {}
        for attribute in dir(H225):
            candidate = getattr(H225, attribute)
            if (isinstance(candidate, type)
                    and hasattr(candidate, '_name_')
                    and hasattr(candidate, '_type_')
                    and not candidate._name_.startswith('_')):
                self.classes[candidate._name_] = candidate
        self.parameterized = set()
        for module, cls in self.classes.items():
            for name in getattr(cls, '_param_', []):
                self.parameterized.add((module, name))

    def modules(self):
        return list(self.classes)

    def types(self, module):
        cls = self.classes.get(module)
        return list(cls._type_) if cls is not None else []

    def get(self, module, name):
        cls = self.classes.get(module)
        if cls is None or name not in cls._type_:
            return None
        return getattr(cls, name.replace('-', '_'))

    def _ref(self, obj):
        typeref = getattr(obj, '_typeref', None)
        if isinstance(typeref, self._reftype):
            return tuple(typeref.called)
        return None

    def node(self, obj):
        ref = self._ref(obj)
        node = _empty_node(obj.TYPE, _qualified(*ref) if ref else None)
        if ref is None or ref in self.parameterized:
            self._structure(node, obj)
        if obj.TYPE == 'INTEGER':
            node['value'] = _py_set(getattr(obj, '_const_val', None))
        node['size'] = _py_set(getattr(obj, '_const_sz', None))
        node['alphabet'] = _py_alphabet(getattr(obj, '_const_alpha', None))
        return node

    def _structure(self, node, obj):
        kind = obj.TYPE
        cont = getattr(obj, '_cont', None)
        if kind in CONSTRUCTED:
            if cont is None:
                return
            additions = list(obj._ext or [])
            groups = {}
            for number, names in (getattr(obj, '_ext_group', None)
                                  or {}).items():
                for name in names:
                    groups[name] = number
            members = []
            for name, component in cont.items():
                members.append({
                    'name': name,
                    'node': self.node(component),
                    'optional': bool(getattr(component, '_opt', False)),
                    'default': getattr(component, '_def', None),
                    'addition': name in additions,
                    'group': groups.get(name),
                })
            node['members'] = members
            node['extensible'] = obj._ext is not None
        elif kind == 'ENUMERATED':
            additions = list(obj._ext or [])
            node['items'] = [(name, number, name in additions)
                             for name, number in cont.items()]
            node['extensible'] = obj._ext is not None
        elif kind in LISTS:
            if cont is not None:
                node['element'] = self.node(cont)
        elif kind == 'BIT STRING' and cont:
            node['bits'] = [(name, number) for name, number in cont.items()]

    def references(self, module, name):
        """(module, name) pairs that the reference definition mentions."""
        found = set()

        def walk(obj):
            ref = self._ref(obj)
            if ref is not None:
                found.add(ref)
                if ref not in self.parameterized:
                    return
            cont = getattr(obj, '_cont', None)
            if obj.TYPE in CONSTRUCTED and cont is not None:
                for component in cont.values():
                    walk(component)
            elif obj.TYPE in LISTS and cont is not None:
                walk(cont)
            elif obj.TYPE == OPEN_TYPE:
                # TYPE-IDENTIFIER.&Type(X): X is in the value constraint.
                constraint = getattr(obj, '_const_val', None)
                for item in (constraint.root if constraint else []):
                    if hasattr(item, 'TYPE'):
                        walk(item)

        obj = self.get(module, name)
        if obj is not None:
            walk(obj)
        return found


# ---------------------------------------------------------------------------
# Differences between two nodes.

def _open_equivalent(ours, reference):
    """An open type in the reference written as OCTET STRING in ours."""
    return (reference['kind'] == OPEN_TYPE
            and ours['kind'] == 'OCTET STRING'
            and ours['size'] is None)


def _format_default(value):
    return 'none' if value is None else repr(value)


def _same_default(ours, reference):
    if ours is None or reference is None:
        return ours is None and reference is None
    if isinstance(reference, tuple) and len(reference) == 2:
        # pycrate BIT STRING value: (integer, length).
        return str(ours) in (str(reference),)
    return ours == reference or str(ours) == str(reference)


def diff_nodes(path, ours, reference, out):
    """Append to out every difference between two nodes."""
    if ours['kind'] != reference['kind'] and not _open_equivalent(ours,
                                                                  reference):
        out.append('{}: type is {} in ours, {} in reference'.format(
            path, ours['kind'], reference['kind']))
        return
    if ours['ref'] != reference['ref'] and not (
            ours['ref'] is None and _open_equivalent(ours, reference)):
        # (An open type may be written inline as OCTET STRING, e.g. as the
        # actual parameter of SIGNED{}, where asn1tools cannot see the
        # name of the open type.)
        out.append('{}: refers to {} in ours, {} in reference'.format(
            path, ours['ref'] or 'an inline type',
            reference['ref'] or 'an inline type'))
    kind = reference['kind']
    if kind == 'INTEGER' and ours['value'] != reference['value']:
        out.append('{}: value constraint {} in ours, {} in reference'.format(
            path, format_set(ours['value']), format_set(reference['value'])))
    if (kind in SIZED or is_string_kind(kind)) and \
            ours['size'] != reference['size']:
        out.append('{}: SIZE constraint {} in ours, {} in reference'.format(
            path, format_set(ours['size']), format_set(reference['size'])))
    if is_string_kind(kind) and ours['alphabet'] != reference['alphabet']:
        out.append('{}: permitted alphabet {} in ours, {} in '
                   'reference'.format(path,
                                      format_alphabet(ours['alphabet']),
                                      format_alphabet(reference['alphabet'])))
    if kind in CONSTRUCTED:
        _diff_members(path, kind, ours, reference, out)
    elif kind == 'ENUMERATED':
        _diff_enumerated(path, ours, reference, out)
    elif kind in LISTS:
        if ours['element'] is not None and reference['element'] is not None:
            diff_nodes(path + '[]', ours['element'], reference['element'],
                       out)
    elif kind == 'BIT STRING':
        if (ours['bits'] or []) != (reference['bits'] or []):
            out.append('{}: named bits {} in ours, {} in reference'.format(
                path, ours['bits'] or [], reference['bits'] or []))


def _diff_members(path, kind, ours, reference, out):
    if ours['members'] is None or reference['members'] is None:
        # Not expanded on one side (e.g. the template of a parameterized
        # type that the reference only keeps as instances).
        return
    word = 'alternative' if kind == 'CHOICE' else 'component'
    if ours['extensible'] != reference['extensible']:
        out.append('{}: extension marker {} in ours, {} in reference'.format(
            path, 'present' if ours['extensible'] else 'absent',
            'present' if reference['extensible'] else 'absent'))
    ours_by_name = dict((m['name'], m) for m in ours['members'])
    reference_by_name = dict((m['name'], m) for m in reference['members'])
    for member in reference['members']:
        if member['name'] not in ours_by_name:
            out.append('{}: {} {!r} missing in ours'.format(
                path, word, member['name']))
    for member in ours['members']:
        if member['name'] not in reference_by_name:
            out.append('{}: {} {!r} not in reference'.format(
                path, word, member['name']))
    ours_order = [m['name'] for m in ours['members']
                  if m['name'] in reference_by_name]
    reference_order = [m['name'] for m in reference['members']
                       if m['name'] in ours_by_name]
    if ours_order != reference_order:
        out.append('{}: {} order differs: ours {} , reference {}'.format(
            path, word, ', '.join(ours_order), ', '.join(reference_order)))
    for mine in ours['members']:
        theirs = reference_by_name.get(mine['name'])
        if theirs is None:
            continue
        where = '{}.{}'.format(path, mine['name'])
        if mine['addition'] != theirs['addition']:
            out.append('{}: {} in ours, {} in reference'.format(
                where,
                'extension addition' if mine['addition'] else 'in the root',
                'extension addition' if theirs['addition'] else 'in the root'))
        if (mine['group'] is None) != (theirs['group'] is None):
            out.append('{}: {} an extension group in ours, {} in '
                       'reference'.format(
                           where, 'in' if mine['group'] else 'not in',
                           'in one' if theirs['group'] else 'not in one'))
        if mine['optional'] != theirs['optional']:
            out.append('{}: {} in ours, {} in reference'.format(
                where, 'OPTIONAL' if mine['optional'] else 'mandatory',
                'OPTIONAL' if theirs['optional'] else 'mandatory'))
        if not _same_default(mine['default'], theirs['default']):
            out.append('{}: DEFAULT {} in ours, {} in reference'.format(
                where, _format_default(mine['default']),
                _format_default(theirs['default'])))
        diff_nodes(where, mine['node'], theirs['node'], out)
    _diff_groups(path, ours, reference, out)


def _diff_groups(path, ours, reference, out):
    """Extension groups: same members grouped together in the same order."""
    def groups(node):
        result = {}
        for member in node['members']:
            if member['group'] is not None:
                result.setdefault(member['group'], []).append(member['name'])
        return sorted(result.values(), key=lambda names: names[0])

    ours_groups, reference_groups = groups(ours), groups(reference)
    if ours_groups != reference_groups:
        out.append('{}: extension groups {} in ours, {} in reference'.format(
            path, ours_groups, reference_groups))


def _diff_enumerated(path, ours, reference, out):
    if ours['extensible'] != reference['extensible']:
        out.append('{}: extension marker {} in ours, {} in reference'.format(
            path, 'present' if ours['extensible'] else 'absent',
            'present' if reference['extensible'] else 'absent'))
    if ours['items'] != reference['items']:
        def text(items):
            return ', '.join('{}({}){}'.format(name, number,
                                               ' [ext]' if addition else '')
                             for name, number, addition in items)
        out.append('{}: enumeration {} in ours, {} in reference'.format(
            path, text(ours['items']), text(reference['items'])))


# ---------------------------------------------------------------------------
# Whole-module comparison.

@functools.lru_cache(maxsize=8)
def _parse(files_key):
    files = [path for path, _, _ in files_key]
    return asn1tools.parse_files(files)


@functools.lru_cache(maxsize=1)
def _reference():
    return Reference()


def _files_key(files):
    key = []
    for path in files:
        path = os.path.abspath(path)
        stat = os.stat(path)
        key.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(key)


def _closure(roots, edges):
    """Map of every node reachable from roots to one node that reached it."""
    reached = dict((root, None) for root in roots)
    todo = list(roots)
    while todo:
        current = todo.pop()
        for target in sorted(edges(current)):
            if target not in reached:
                reached[target] = current
                todo.append(target)
    return reached


def compare_all(files=None, full_modules=()):
    """Every difference, as a list of (module, message)."""
    files = list(files) if files is not None else default_files()
    parsed = _parse(_files_key(files))
    ours = Ours(parsed)
    reference = _reference()
    found = []

    for module in ours.modules():
        if module not in reference.classes:
            found.append((module, '{}: no reference module of that '
                                  'name'.format(module)))
            continue
        tags = parsed[module].get('tags')
        if tags != 'AUTOMATIC':
            found.append((module, '{}: tagging is {}, expected '
                                  'AUTOMATIC'.format(module, tags)))
        reference_types = set(reference.types(module))
        for name, raw in ours.types(module).items():
            path = _qualified(module, name)
            if name not in reference_types:
                found.append((module, '{}: not defined in the reference '
                                      'module'.format(path)))
                continue
            out = []
            # The dummy parameters of a parameterized type stand for
            # themselves in its own definition.
            env = dict((dummy, None) for dummy in raw.get('parameters', []))
            mine = ours.node(raw, module, env)
            theirs = reference.node(reference.get(module, name))
            diff_nodes(path, mine, theirs, out)
            found.extend((module, message) for message in out)
        # Imports that do not resolve.
        for source, names in ours.imports(module).items():
            if source not in parsed:
                found.append((module, '{}: imports from {}, which is not '
                                      'among the files'.format(module,
                                                               source)))
                continue
            for name in names:
                if name not in ours.types(source):
                    found.append((module, '{}: imports {} from {}, which does '
                                          'not define it'.format(module, name,
                                                                 source)))
    for module, message in sorted(set(ours.problems)):
        found.append((module, '{}: {}'.format(module, message)))

    defined = set((module, name) for module in ours.modules()
                  for name in ours.types(module))

    def edges(node):
        return (reference.references(*node) | ours.references(*node))

    # Reference types reachable from what we define or import, but missing.
    roots = set(defined)
    for module in ours.modules():
        for source, names in ours.imports(module).items():
            roots.update((source, name) for name in names)
    reached = _closure(sorted(roots), edges)
    full = set()
    for module in full_modules:
        for name in reference.types(module):
            if (module, name) not in reached:
                reached[(module, name)] = None
                full.add((module, name))
    for node in sorted(reached):
        module, name = node
        if node in defined or module not in reference.classes:
            continue
        if reference.get(module, name) is None:
            continue
        via = reached[node]
        if node in full:
            reason = 'the module is checked in full'
        elif via is None:
            reason = 'imported'
        else:
            reason = 'needed by ' + _qualified(*via)
        found.append((module, '{}: missing ({})'.format(
            _qualified(module, name), reason)))

    # Types of an imported module that no importing module needs.
    imported = set()
    for module in ours.modules():
        imported.update(source for source in ours.imports(module)
                        if source != module)
    top = [module for module in ours.modules() if module not in imported]
    top_roots = sorted((module, name) for module in top
                       for name in ours.types(module))
    needed = _closure(top_roots, edges)
    importers = {}
    for module in ours.modules():
        for source in ours.imports(module):
            importers.setdefault(source, set()).add(module)
    for node in sorted(defined):
        module, name = node
        if module in imported and node not in needed:
            found.append((module, '{}: not needed by the importing '
                                  'module(s) {}'.format(
                                      _qualified(module, name),
                                      ', '.join(sorted(importers[module])))))
    return found


def compare(module_names=None, files=None, full_modules=()):
    """Differences for the named modules (all modules if None), as text."""
    found = compare_all(files=files, full_modules=full_modules)
    if module_names is not None:
        wanted = set(module_names)
        found = [item for item in found if item[0] in wanted]
    return [message for _, message in found]


def modules_in(files=None):
    """Names of the modules that the files define."""
    files = list(files) if files is not None else default_files()
    return list(_parse(_files_key(files)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Compare our ASN.1 modules with pycrate\'s compilation '
                    'of the ITU-T H.225.0 modules.')
    parser.add_argument('modules', nargs='*', metavar='MODULE',
                        help='modules to report on (default: all in the '
                             'files)')
    parser.add_argument('--files', nargs='+', metavar='FILE',
                        help='ASN.1 files to load (default: {} in {})'.format(
                            ', '.join(DEFAULT_FILE_NAMES), ASN1_DIR))
    parser.add_argument('--full', action='append', default=[],
                        metavar='MODULE',
                        help='also report every type of this reference '
                             'module that ours lacks, reachable or not')
    args = parser.parse_args(argv)
    files = args.files if args.files else default_files()
    differences = compare(args.modules or None, files=files,
                          full_modules=tuple(args.full))
    for line in differences:
        print(line)
    modules = args.modules or modules_in(files)
    print('{} difference(s) in {}'.format(len(differences),
                                          ', '.join(modules)))
    return 1 if differences else 0


if __name__ == '__main__':
    sys.exit(main())
