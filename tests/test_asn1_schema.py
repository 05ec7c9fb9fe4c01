"""Checks of our ASN.1 modules (gatekeeper/h225/asn1/*.asn).

* the files compile with asn1tools for aligned PER;
* tools/asn1_compare.py finds no difference between each module and
  pycrate's compilation of the ITU-T text (and does find deliberately
  introduced errors);
* values of H.235 and H.245 types encoded by asn1tools decode back to the
  same values with asn1tools and with pycrate's decoder.

pycrate is used only as an oracle: its aligned PER *encoder* mishandles
extension additions, so only its decoder is used.
"""

import os
import re
import shutil
import sys

import asn1tools
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASN1_DIR = os.path.join(ROOT, 'gatekeeper', 'h225', 'asn1')
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import asn1_compare  # noqa: E402

MODULE_FILES = {
    'H323-MESSAGES': 'h225.asn',
    'H235-SECURITY-MESSAGES': 'h235.asn',
    'MULTIMEDIA-SYSTEM-CONTROL': 'h245.asn',
}
PRESENT = [module for module, name in MODULE_FILES.items()
           if os.path.exists(os.path.join(ASN1_DIR, name))]
H235 = 'H235-SECURITY-MESSAGES'
H245 = 'MULTIMEDIA-SYSTEM-CONTROL'


def asn1_path(name):
    return os.path.join(ASN1_DIR, name)


# ---------------------------------------------------------------------------
# (a) The files compile.

def test_all_files_compile_for_per():
    spec = asn1tools.compile_files(asn1_compare.default_files(), 'per')
    assert set(PRESENT) <= set(spec.modules)


def test_h235_and_h245_compile_on_their_own():
    spec = asn1tools.compile_files(
        [asn1_path('h235.asn'), asn1_path('h245.asn')], 'per')
    assert set(spec.modules) == {H235, H245}


# ---------------------------------------------------------------------------
# (b) No difference from the reference, module by module.

@pytest.mark.parametrize('module', PRESENT)
def test_module_matches_reference(module):
    differences = asn1_compare.compare([module])
    assert not differences, '{} difference(s) in {}:\n{}'.format(
        len(differences), module, '\n'.join(differences))


def test_command_line_reports_no_difference(capsys):
    files = [asn1_path('h235.asn'), asn1_path('h245.asn')]
    assert asn1_compare.main(['--files'] + files) == 0
    output = capsys.readouterr().out
    assert output == ('0 difference(s) in H235-SECURITY-MESSAGES, '
                      'MULTIMEDIA-SYSTEM-CONTROL\n')


# The comparison itself must catch errors: each case edits a copy of the
# files and names a text that must appear in one of the differences
# reported (None: the edit is equivalent and nothing may be reported).

PERTURBATIONS = [
    ('swap two root components', 'h235.asn',
     '    password        Password OPTIONAL,\n'
     '    dhkey           DHset OPTIONAL,',
     '    dhkey           DHset OPTIONAL,\n'
     '    password        Password OPTIONAL,',
     'ClearToken: component order differs'),
    ('swap two extension additions', 'h245.asn',
     '    t38FaxUdpOptions        T38FaxUdpOptions OPTIONAL,\n'
     '    t38FaxTcpOptions        T38FaxTcpOptions OPTIONAL',
     '    t38FaxTcpOptions        T38FaxTcpOptions OPTIONAL,\n'
     '    t38FaxUdpOptions        T38FaxUdpOptions OPTIONAL',
     'T38FaxProfile: component order differs'),
    ('swap two extension alternatives', 'h245.asn',
     '    segmentationAndReassembly   NULL,\n'
     '    hdlcFrameTunnelingwSAR      NULL,',
     '    hdlcFrameTunnelingwSAR      NULL,\n'
     '    segmentationAndReassembly   NULL,',
     'DataProtocolCapability: alternative order differs'),
    ('drop an extension marker with additions', 'h235.asn',
     '    nonStandard     NonStandardParameter OPTIONAL,\n    ...,\n',
     '    nonStandard     NonStandardParameter OPTIONAL,\n',
     'ClearToken.eckasdhkey: in the root in ours, extension addition'),
    ('drop an extension marker of a nested type', 'h245.asn',
     '        transmitAndReceiveCompression   CompressionType,\n'
     '        ...\n',
     '        transmitAndReceiveCompression   CompressionType\n',
     'v76wCompression: extension marker absent in ours, present'),
    ('move an alternative into the extension', 'h235.asn',
     '    nonStandard     NonStandardParameter,\n    ...,\n',
     '    ...,\n    nonStandard     NonStandardParameter,\n',
     'AuthenticationMechanism.nonStandard: extension addition in ours'),
    ('change a SIZE bound', 'h235.asn',
     'ChallengeString ::= OCTET STRING (SIZE (8..128))',
     'ChallengeString ::= OCTET STRING (SIZE (8..127))',
     'ChallengeString: SIZE constraint (8..127) in ours, (8..128)'),
    ('make a SIZE constraint extensible', 'h235.asn',
     'Password ::= BMPString (SIZE (1..128))',
     'Password ::= BMPString (SIZE (1..128, ...))',
     'Password: SIZE constraint (1..128, ...) in ours, (1..128)'),
    ('change an INTEGER bound', 'h245.asn',
     '    dscpValue                   INTEGER (0..63) OPTIONAL',
     '    dscpValue                   INTEGER (0..64) OPTIONAL',
     'QOSCapability.dscpValue: value constraint (0..64) in ours, (0..63)'),
    ('make an INTEGER constraint extensible', 'h245.asn',
     '    numberOfCodewords   INTEGER (1..65536),',
     '    numberOfCodewords   INTEGER (1..65536, ...),',
     'V42bis.numberOfCodewords: value constraint (1..65536, ...) in ours'),
    ('constrain an unconstrained INTEGER', 'h245.asn',
     '    t38FaxMaxBuffer     INTEGER OPTIONAL,',
     '    t38FaxMaxBuffer     INTEGER (0..65535) OPTIONAL,',
     't38FaxMaxBuffer: value constraint (0..65535) in ours, none'),
    ('make a component mandatory', 'h235.asn',
     '    ranInt      INTEGER OPTIONAL,',
     '    ranInt      INTEGER,',
     'Params.ranInt: mandatory in ours, OPTIONAL in reference'),
    ('make a mandatory addition optional', 'h245.asn',
     '    version                 INTEGER (0..255),',
     '    version                 INTEGER (0..255) OPTIONAL,',
     'T38FaxProfile.version: OPTIONAL in ours, mandatory'),
    ('add a DEFAULT', 'h245.asn',
     '    atmUBR      BOOLEAN,',
     '    atmUBR      BOOLEAN DEFAULT TRUE,',
     'ATMParameters.atmUBR: DEFAULT True in ours, none'),
    ('refer to another type', 'h235.asn',
     '    srandom     RandomVal OPTIONAL,',
     '    srandom     TimeStamp OPTIONAL,',
     'KeySignedMaterial.srandom: refers to '
     'H235-SECURITY-MESSAGES.TimeStamp in ours'),
    ('change a built-in type', 'h235.asn',
     '    signature       BIT STRING\n}',
     '    signature       OCTET STRING\n}',
     'cryptoSignedToken.token.signature: type is OCTET STRING in ours, '
     'BIT STRING'),
    ('change the actual parameter of SIGNED', 'h235.asn',
     '        token       SIGNED { EncodedGeneralToken }',
     '        token       SIGNED { ClearToken }',
     'cryptoSignedToken.token.toBeSigned: type is SEQUENCE in ours'),
    ('add an alternative', 'h245.asn',
     '    class5  NULL,\n    ...\n',
     '    class5  NULL,\n    ...,\n    class6  NULL\n',
     "QOSClass: alternative 'class6' not in reference"),
    ('remove a needed type', 'h235.asn',
     'IV16 ::= OCTET STRING (SIZE (16))\n', '',
     'H235-SECURITY-MESSAGES.IV16: missing'),
    ('add a type the reference lacks', 'h245.asn',
     '\nEND', '\nSpare ::= INTEGER\n\nEND',
     'MULTIMEDIA-SYSTEM-CONTROL.Spare: not defined in the reference'),
    ('change a permitted alphabet', 'h225.asn',
     re.compile(r'(TBCD-STRING ::= IA5String\s*\(FROM\s*\("0123456789#\*ab)'
                r'c("\)\))'),
     r'\1\2',
     'TBCD-STRING: permitted alphabet'),
    ('drop a character from a permitted alphabet', 'h225.asn',
     re.compile(r'(dialledDigits\s+IA5String\s*\(SIZE\s*\(1\.\.128\)\)\s*'
                r'\(FROM\s*\("0123456789#\*),("\)\))'),
     r'\1\2',
     'AliasAddress.dialledDigits: permitted alphabet'),
    ('spell an alphabet differently', 'h225.asn',
     re.compile(r'(NumberDigits ::= IA5String\s*\(SIZE\s*\(1\.\.128\)\)\s*)'
                r'\(FROM\s*\("0123456789#\*,"\)\)'),
     r'\1(FROM("0".."9" | "#" | "*" | ","))',
     None),
]


@pytest.mark.parametrize(
    'file_name, old, new, expected',
    [case[1:] for case in PERTURBATIONS],
    ids=[case[0] for case in PERTURBATIONS])
def test_comparison_catches_errors(tmp_path, file_name, old, new, expected):
    if not os.path.exists(asn1_path(file_name)):
        pytest.skip('{} is not there yet'.format(file_name))
    # H.235/H.245 edits are checked on those two modules alone (fast); the
    # H.225.0 edits need all three.
    names = (MODULE_FILES.values() if file_name == 'h225.asn'
             else ('h235.asn', 'h245.asn'))
    for name in names:
        if os.path.exists(asn1_path(name)):
            shutil.copy(asn1_path(name), str(tmp_path))
    target = tmp_path / file_name
    text = target.read_text()
    if isinstance(old, re.Pattern):
        if not old.search(text):
            pytest.skip('text to edit not found in {}'.format(file_name))
        edited = old.sub(new, text, count=1)
    else:
        assert old in text, 'text to edit not found in {}'.format(file_name)
        edited = text.replace(old, new, 1)
    assert edited != text
    target.write_text(edited)
    files = sorted(str(path) for path in tmp_path.iterdir())
    differences = asn1_compare.compare(files=files)
    listing = '\n'.join(differences)
    if expected is None:
        assert not differences, listing
    else:
        assert any(expected in line for line in differences), \
            'expected {!r} among:\n{}'.format(expected, listing)
        assert asn1_compare.main(['--files'] + files) == 1


def test_stub_importer_finds_missing_and_unneeded_types(tmp_path):
    """Without h225.asn: a stand-in importer exercises the closure checks."""
    stub = tmp_path / 'stub.asn'
    stub.write_text(
        'H323-MESSAGES DEFINITIONS AUTOMATIC TAGS ::=\n'
        'BEGIN\n'
        'IMPORTS ClearToken FROM H235-SECURITY-MESSAGES\n'
        '    T38FaxProfile FROM MULTIMEDIA-SYSTEM-CONTROL;\n'
        'Stand-in ::= SEQUENCE { token ClearToken, fax T38FaxProfile }\n'
        'TransportAddress ::= CHOICE {\n'
        '    ipAddress SEQUENCE { ip OCTET STRING (SIZE (4)),\n'
        '                         port INTEGER (0..65535) },\n'
        '    ...\n'
        '}\n'
        'END\n')
    files = [str(stub), asn1_path('h235.asn'), asn1_path('h245.asn')]
    asn1tools.compile_files(files, 'per')
    differences = asn1_compare.compare(files=files)
    listing = '\n'.join(differences)
    # A stand-in type the reference does not have.
    assert 'H323-MESSAGES.Stand-in: not defined in the reference module' \
        in differences, listing
    # TransportAddress is checked against the reference: most of it lacks.
    assert any(line.startswith('H323-MESSAGES.TransportAddress: alternative')
               for line in differences), listing
    # H.245 types that T38FaxProfile does not need.
    assert ('MULTIMEDIA-SYSTEM-CONTROL.QOSCapability: not needed by the '
            'importing module(s) H323-MESSAGES') in differences, listing
    # Nothing reported against the types ClearToken does need.
    assert not any(line.startswith('H235-SECURITY-MESSAGES.ClearToken')
                   for line in differences), listing


# ---------------------------------------------------------------------------
# (c) Round trips through asn1tools, checked with pycrate's decoder.

@pytest.fixture(scope='module')
def spec():
    return asn1tools.compile_files(
        [asn1_path('h235.asn'), asn1_path('h245.asn')], 'per')


def pycrate_type(module, name):
    from pycrate_asn1dir import H225
    return getattr(getattr(H225, module.replace('-', '_')),
                   name.replace('-', '_'))


def pycrate_decode(module, name, data):
    """Decode aligned PER with pycrate, as an asn1tools-style value."""
    from pycrate_asn1rt.codecs import ASN1CodecPER
    obj = pycrate_type(module, name)
    try:
        obj.from_aper(bytes(data))
    except Exception:
        # pycrate keeps decoder state in a class attribute.
        ASN1CodecPER._off = []
        raise
    return to_asn1tools(obj, obj.get_val())


def to_asn1tools(obj, value):
    """Convert a pycrate value of obj to asn1tools' representation."""
    kind = obj.TYPE
    if kind == 'OBJECT IDENTIFIER':
        return '.'.join(str(arc) for arc in value)
    if kind == 'BIT STRING':
        number, length = value
        size = (length + 7) // 8
        return ((number << (8 * size - length)).to_bytes(size, 'big'),
                length)
    if kind == 'NULL':
        return None
    if kind in ('SEQUENCE', 'SET'):
        return dict((name, to_asn1tools(obj._cont[name], item))
                    for name, item in value.items())
    if kind == 'CHOICE':
        name, item = value
        return (name, to_asn1tools(obj._cont[name], item))
    if kind in ('SEQUENCE OF', 'SET OF'):
        return [to_asn1tools(obj._cont, item) for item in value]
    if kind == 'OPEN_TYPE':
        # pycrate leaves the contents of our open types undecoded.
        _, contents = value
        assert isinstance(contents, bytes), value
        return contents
    return value


def make_clear_token():
    return {
        'tokenOID': '0.0.8.235.0.2.5',
        'timeStamp': 1234567890,
        'password': 'p\u00e4ssword',
        'dhkey': {
            'halfkey': (b'\xab\xc0', 12),
            'modSize': (b'', 0),
            'generator': (b'\x02', 8),
        },
        'challenge': b'0123456789abcdef',
        'random': -5,
        'certificate': {'type': '1.2.840.113549.1.1.1',
                        'certificate': b'\x30\x03\x02\x01\x00'},
        'generalID': 'gk.example',
        'nonStandard': {'nonStandardIdentifier': '1.3.6.1.4.1.99',
                        'data': b'opaque'},
        'eckasdhkey': ('eckasdh2', {
            'public-key': {'x': (b'\x80', 1), 'y': (b'\xf0', 4)},
            'fieldSize': (b'\x00\x01', 16),
            'base': {},
            'weierstrassA': (b'', 0),
            'weierstrassB': (b'\xfe', 7),
        }),
        'sendersID': 'endpoint-1',
        'h235Key': ('secureSharedSecret', {
            'paramS': {'iv8': b'12345678'},
            'encryptedSessionKey': b'\x01' * 16,
            'genericKeyMaterial': b'key',
        }),
        'profileInfo': [
            {'elementID': 0,
             'paramS': {'ranInt': 7, 'iv16': b'0123456789abcdef',
                        'clearSalt': b'salt'},
             'element': ('octets', b'\x00\xff')},
            {'elementID': 1, 'element': ('integer', -1000000)},
            {'elementID': 2, 'element': ('bits', (b'\xa0', 3))},
            {'elementID': 3, 'element': ('name', 'n\u00e4me')},
            {'elementID': 255, 'element': ('flag', False)},
            {'elementID': 4},
        ],
    }


def minimal_clear_token():
    return {'tokenOID': '1.2.3', 'timeStamp': 1, 'generalID': 'ep'}


def envelope(contents=None):
    params = {'ranInt': 42, 'iv': b'\x00' * 12}
    if contents is None:
        return {'algorithmOID': '2.16.840.1.101.3.4.1.2', 'paramS': params,
                'encryptedData': b'\x10\x20\x30'}
    return {'toBeSigned': contents, 'algorithmOID': '1.2.840.113549.1.1.5',
            'paramS': params, 'signature': (b'\xde\xad\xbe\xef', 32)}


def encoded(spec, module, name, value):
    return spec.modules[module][name].encode(value)


def values(spec):
    """(id, module, type, value) of every round-trip case."""
    token = encoded(spec, H235, 'ClearToken', minimal_clear_token())
    key_sync = encoded(spec, H235, 'KeySyncMaterial',
                       {'generalID': 'gk', 'keyMaterial': (b'\xff' * 16,
                                                           128)})
    key_signed = encoded(spec, H235, 'KeySignedMaterial', {
        'generalId': 'ep', 'mrandom': 2 ** 31 - 1, 'srandom': -(2 ** 31),
        'timeStamp': 4294967295,
        'encrptval': dict(envelope(), encryptedData=key_sync)})
    hashed = {'algorithmOID': '1.3.14.3.2.26', 'paramS': {},
              'hash': (b'\x12' * 12, 96)}
    return [
        ('ClearToken-full', H235, 'ClearToken', make_clear_token()),
        ('ClearToken-minimal', H235, 'ClearToken', minimal_clear_token()),
        ('ClearToken-dhkey-only', H235, 'ClearToken',
         {'tokenOID': '0.0.8.235.0.3.43',
          'dhkey': {'halfkey': (b'\x55' * 256, 2048),
                    'modSize': (b'\xff' * 256, 2048),
                    'generator': (b'\x02', 8)}}),
        ('ClearToken-h235Key-sharedSecret', H235, 'ClearToken',
         {'tokenOID': '1.2', 'h235Key': (
             'sharedSecret', dict(envelope(), encryptedData=key_sync))}),
        ('ClearToken-h235Key-certProtectedKey', H235, 'ClearToken',
         {'tokenOID': '1.2', 'h235Key': (
             'certProtectedKey', envelope(key_signed))}),
        ('ClearToken-h235Key-secureChannel', H235, 'ClearToken',
         {'tokenOID': '1.2', 'h235Key': ('secureChannel',
                                         (b'\x01\x02\x03', 24))}),
        ('CryptoToken-encrypted', H235, 'CryptoToken',
         ('cryptoEncryptedToken', {'tokenOID': '0.0.8.235.0.2.1',
                                   'token': envelope()})),
        ('CryptoToken-signed', H235, 'CryptoToken',
         ('cryptoSignedToken', {'tokenOID': '0.0.8.235.0.2.2',
                                'token': envelope(token)})),
        ('CryptoToken-hashed', H235, 'CryptoToken',
         ('cryptoHashedToken', {'tokenOID': '0.0.8.235.0.2.1',
                                'hashedVals': make_clear_token(),
                                'token': hashed})),
        ('CryptoToken-pwdEncr', H235, 'CryptoToken',
         ('cryptoPwdEncr', envelope())),
        ('AuthenticationMechanism-root', H235, 'AuthenticationMechanism',
         ('pwdHash', None)),
        ('AuthenticationMechanism-nonStandard', H235,
         'AuthenticationMechanism',
         ('nonStandard', {'nonStandardIdentifier': '1.2.3.4',
                          'data': b''})),
        ('AuthenticationMechanism-keyExch', H235, 'AuthenticationMechanism',
         ('keyExch', '0.0.8.235.0.3.24')),
        ('QOSCapability-root', H245, 'QOSCapability',
         {'nonStandardData': {
             'nonStandardIdentifier': ('h221NonStandard',
                                       {'t35CountryCode': 181,
                                        't35Extension': 0,
                                        'manufacturerCode': 18}),
             'data': b'\x01'},
          'atmParameters': {'maxNTUSize': 65535, 'atmUBR': True,
                            'atmrtVBR': False, 'atmnrtVBR': True,
                            'atmABR': False, 'atmCBR': True}}),
        ('QOSCapability-full', H245, 'QOSCapability',
         {'rsvpParameters': {'qosMode': ('controlledLoad', None),
                             'tokenRate': 1, 'bucketSize': 4294967295,
                             'peakRate': 64000, 'minPoliced': 64,
                             'maxPktSize': 1500},
          'localQoS': True,
          'genericTransportParameters': {'averageRate': 8000,
                                         'burst': 2,
                                         'peakRate': 16000,
                                         'maxPktSize': 200},
          'servicePriority': {'servicePrioritySignalled': False,
                              'servicePriorityValue': {'value': 5},
                              'serviceClass': 4095,
                              'serviceSubclass': 0},
          'authorizationParameter': {},
          'qosDescriptor': {'qosType': ('required', None),
                            'qosClass': ('class3', None)},
          'dscpValue': 46}),
        ('DataProtocolCapability-root', H245, 'DataProtocolCapability',
         ('v14buffered', None)),
        ('DataProtocolCapability-nonStandard', H245,
         'DataProtocolCapability',
         ('nonStandard', {'nonStandardIdentifier': ('object', '1.2.3'),
                          'data': b'\xca\xfe'})),
        ('DataProtocolCapability-v76wCompression', H245,
         'DataProtocolCapability',
         ('v76wCompression', ('transmitAndReceiveCompression',
                              ('v42bis', {'numberOfCodewords': 65536,
                                          'maximumStringLength': 1})))),
        ('T38FaxProfile-root', H245, 'T38FaxProfile',
         {'fillBitRemoval': True, 'transcodingJBIG': False,
          'transcodingMMR': True}),
        ('T38FaxProfile-udp', H245, 'T38FaxProfile',
         {'fillBitRemoval': False, 'transcodingJBIG': False,
          'transcodingMMR': False, 'version': 3,
          't38FaxRateManagement': ('transferredTCF', None),
          't38FaxUdpOptions': {'t38FaxMaxBuffer': 200,
                               't38FaxMaxDatagram': 72,
                               't38FaxUdpEC': ('t38UDPRedundancy', None)}}),
        ('T38FaxProfile-tcp', H245, 'T38FaxProfile',
         {'fillBitRemoval': False, 'transcodingJBIG': True,
          'transcodingMMR': False, 'version': 0,
          't38FaxRateManagement': ('localTCF', None),
          't38FaxTcpOptions': {'t38TCPBidirectionalMode': True}}),
    ]


def value_ids():
    return [case[0] for case in values(asn1tools.compile_files(
        [asn1_path('h235.asn'), asn1_path('h245.asn')], 'per'))]


CASE_IDS = value_ids()


@pytest.mark.parametrize('case_id', CASE_IDS)
def test_round_trip(spec, case_id):
    _, module, name, value = dict(
        (case[0], case) for case in values(spec))[case_id]
    compiled = spec.modules[module][name]
    data = compiled.encode(value)
    assert compiled.decode(data) == value
    assert pycrate_decode(module, name, data) == value


def test_open_type_contents_read_by_pycrate(spec):
    """toBeSigned of a signed token holds a ClearToken that pycrate reads."""
    token = minimal_clear_token()
    data = encoded(spec, H235, 'CryptoToken',
                   ('cryptoSignedToken',
                    {'tokenOID': '1.2',
                     'token': envelope(encoded(spec, H235, 'ClearToken',
                                               token))}))
    _, signed = pycrate_decode(H235, 'CryptoToken', data)
    assert pycrate_decode(H235, 'ClearToken',
                          signed['token']['toBeSigned']) == token


def test_empty_extension_alternative_is_one_zero_octet_with_our_codec_only(spec):
    """Plain asn1tools 0.169.0 writes an empty extension alternative as a
    zero-length open type (85 00); X.691 wants one 0x00 octet (85 01 00).
    gatekeeper/h225/codec.py corrects this (A1) in its own compiled types."""
    from gatekeeper.h225 import codec

    assert bytes(encoded(spec, H245, 'DataProtocolCapability', ('tcp', None))) == bytes.fromhex('8500')
    assert codec.encode('DataProtocolCapability', ('tcp', None)) == bytes.fromhex('850100')


def test_pycrate_reads_conformant_empty_extension_addition():
    assert pycrate_decode(H245, 'DataProtocolCapability',
                          bytes.fromhex('850100')) == ('tcp', None)


def test_asn1tools_reads_conformant_empty_extension_alternative(spec):
    compiled = spec.modules[H245]['DataProtocolCapability']
    assert compiled.decode(bytes.fromhex('850100')) == ('tcp', None)
    assert compiled.decode(bytes.fromhex('860100')) == ('udp', None)
