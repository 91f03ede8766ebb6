"""CAR files (content-addressable archives, CARv1 and CARv2) read with the
standard library: their header and the roots it names. Enough to tell a CAR
from any other file before a task is started for it, and to know which pins
an import will make before the node makes them; the node reads the blocks.

A CARv1 begins with a varint, the length of its header, then the header: a
dag-cbor map ``{"roots": [CID, ...], "version": 1}``. A CARv2 begins with a
fixed pragma (itself such a header, ``{"version": 2}``), then 40 bytes that
say where the CARv1 inside it begins.
"""


from console.cids import BASE58, base32_encode, is_cid

MAX_HEADER = 8 * 1024 * 1024      # bytes; a header with 100,000 roots is about 4 MiB
MAX_DEPTH = 16                    # nesting in the header's CBOR
CARV2_HEADER = 40                 # characteristics (16), data offset, data size, index offset (8 each)
CID_TAG = 42                      # dag-cbor's tag for a CID


class NotACar(ValueError):
    """The file is not a CAR; the text says why, in a few words that
    console/messages.py translates."""


def read_roots(f):
    """The roots the CAR in the binary file ``f`` names, as CID text
    (CIDv0 as ``Qm...``, CIDv1 in base32, as Kubo writes them); NotACar if
    it is not a CAR. Reads only the header(s)."""
    header = read_header(f)
    if header.get("version") == 2:
        rest = f.read(CARV2_HEADER)
        if len(rest) != CARV2_HEADER:
            raise NotACar("the CARv2 header is cut short")
        f.seek(int.from_bytes(rest[16:24], "little"))
        header = read_header(f)
    if header.get("version") != 1:
        raise NotACar("its CAR version is neither 1 nor 2")
    roots = header.get("roots")
    if not isinstance(roots, list) or not all(isinstance(root, Cid) for root in roots):
        raise NotACar("its header has no list of roots")
    return [root.text for root in roots]


def read_header(f):
    """One CARv1-style header: a varint length, then a dag-cbor map."""
    length = shift = 0
    for _ in range(9):
        byte = f.read(1)
        if not byte:
            raise NotACar("it is empty" if not shift else "its header is cut short")
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    else:
        raise NotACar("it does not begin with a header length")
    if not 0 < length <= MAX_HEADER:
        raise NotACar("its header length is impossible")
    data = f.read(length)
    if len(data) != length:
        raise NotACar("its header is cut short")
    try:
        header, end = decode_cbor(data, 0, 0)
    except (IndexError, ValueError):
        raise NotACar("its header is not dag-cbor")
    if end != length or not isinstance(header, dict):
        raise NotACar("its header is not a dag-cbor map")
    return header


class Cid:
    """A CID met in a header (dag-cbor tag 42: a 0x00, then the CID's bytes)."""

    def __init__(self, binary):
        self.text = cid_text(binary)


def decode_cbor(data, pos, depth):
    """(value, position after it) of the CBOR item at ``pos``; the subset
    dag-cbor headers use. IndexError or ValueError if it is not one."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        argument = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise IndexError("cut short")
        argument = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        raise ValueError("indefinite lengths are not dag-cbor")
    if major == 0:
        return argument, pos
    if major == 1:
        return -1 - argument, pos
    if major in (2, 3):
        if pos + argument > len(data):
            raise IndexError("cut short")
        raw = data[pos:pos + argument]
        return (raw if major == 2 else raw.decode("utf-8")), pos + argument
    if major == 4:
        items = []
        for _ in range(argument):       # each item takes a byte at least: bounded by the data
            item, pos = decode_cbor(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        entries = {}
        for _ in range(argument):
            key, pos = decode_cbor(data, pos, depth + 1)
            value, pos = decode_cbor(data, pos, depth + 1)
            if not isinstance(key, str):
                raise ValueError("a map key that is not text")
            entries[key] = value
        return entries, pos
    if major == 6 and argument == CID_TAG:
        raw, pos = decode_cbor(data, pos, depth + 1)
        if not isinstance(raw, bytes) or raw[:1] != b"\x00":
            raise ValueError("a CID that is not bytes")
        return Cid(raw[1:]), pos
    if major == 7 and info in (20, 21, 22):
        return (False, True, None)[info - 20], pos
    raise ValueError("a CBOR item a CAR header does not hold")


def cid_text(binary):
    """A CID's bytes as Kubo writes it: a CIDv0 in base58btc, a CIDv1 in
    base32; ValueError if they are not a CID."""
    if len(binary) == 34 and binary[:2] == b"\x12\x20":
        number, text = int.from_bytes(binary, "big"), ""
        while number:
            number, digit = divmod(number, 58)
            text = BASE58[digit] + text
    else:
        text = "b" + base32_encode(binary)
    if not is_cid(text):
        raise ValueError("not a CID")
    return text
