"""CIDs checked with the standard library alone, and pin lists: checked and
spooled line by line by the server, read back by the pin_add worker.
"""

import base64
import binascii
import os
import re
import secrets

MAX_INVALID_LINES = 100      # line numbers of lines that are not CIDs kept in a result
MAX_LINE_BYTES = 4096        # a longer line is not a CID and a name; it is skipped, never held
MAX_NAME = 255
DEFAULT_PIN_TIMEOUT_S = 600
MAX_PIN_TIMEOUT_S = 7 * 24 * 3600

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BASE58_INDEX = {c: i for i, c in enumerate(BASE58)}
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_CID_CHARS = 200


def base58_decode(text):
    number = 0
    for char in text:
        number = number * 58 + BASE58_INDEX[char]   # KeyError: not base58
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def base36_decode(text):
    number = int(text, 36)
    zeros = len(text) - len(text.lstrip("0"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


# RFC 4648's base32 alphabet as the digits of int(text, 32): one C call decodes a whole CID.
BASE32_AS_DIGITS = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghijklmnopqrstuv")


def base32_decode(text):
    """Unpadded lowercase base32 (as CIDs write it) to bytes; the bits left
    over past the last whole byte are dropped, as base64.b32decode drops them."""
    if not re.fullmatch(r"[a-z2-7]*", text) or len(text) % 8 in (1, 3, 6):
        raise ValueError("not base32")
    if not text:
        return b""
    bits = 5 * len(text)
    return (int(text.translate(BASE32_AS_DIGITS), 32) >> bits % 8).to_bytes(bits // 8, "big")


def base32_encode(data):
    """Bytes to unpadded lowercase base32, as a CIDv1 is written by default."""
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def read_varint(data, pos):
    """(value, next position) of an unsigned varint; ValueError if cut short or over 9 bytes."""
    value = shift = 0
    for index in range(pos, min(len(data), pos + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise ValueError("a bad varint")


IDENTITY = 0x00               # the identity "hash": the digest is the content itself
MAX_IDENTITY_DIGEST = 128    # the most Kubo accepts inline (boxo's verifcid)


def valid_multihash(data, pos):
    """True if ``data`` from ``pos`` on is one multihash: a code, a length
    and exactly that many bytes. Only an identity multihash may be empty
    (``bafkqaaa``, the empty raw block, is one)."""
    code, pos = read_varint(data, pos)
    length, pos = read_varint(data, pos)
    if length != len(data) - pos:
        return False
    return length <= MAX_IDENTITY_DIGEST if code == IDENTITY else length > 0


# Multibase prefix -> decoder of the rest (https://github.com/multiformats/multibase).
MULTIBASES = {
    "b": base32_decode,
    "B": lambda text: base32_decode(text.lower()),
    "z": base58_decode,
    "f": lambda text: bytes.fromhex(text) if text == text.lower() else b"",
    "F": lambda text: bytes.fromhex(text) if text == text.upper() else b"",
    "k": lambda text: base36_decode(text) if text == text.lower() else b"",
    "K": lambda text: base36_decode(text.lower()) if text == text.upper() else b"",
}


def is_cid(text):
    """True if ``text`` is a CIDv0 (base58btc "Qm...") or a multibase CIDv1."""
    if not 2 < len(text) <= MAX_CID_CHARS or not text.isascii() or not text.isalnum():
        return False
    try:
        if len(text) == 46 and text.startswith("Qm"):
            data = base58_decode(text)
            return len(data) == 34 and data[:2] == b"\x12\x20"
        decode = MULTIBASES.get(text[0])
        if decode is None:
            return False
        data = decode(text[1:])
        version, pos = read_varint(data, 0)
        if version != 1:
            return False
        _codec, pos = read_varint(data, pos)
        return valid_multihash(data, pos)
    except (KeyError, ValueError, binascii.Error):
        return False


def multihash_of(cid):
    """The multihash (bytes) a CID names, or None if ``cid`` is not a CID.

    Kubo's blockstore keeps a block under its multihash alone: the CIDv0
    and the CIDv1s (any codec, any base) of the same bytes share it, and a
    block it lists by key comes back as a raw CIDv1 (``bafkrei...``) even
    when it is a folder's node (``bafybei...``).
    """
    if not is_cid(cid):
        return None
    if len(cid) == 46 and cid.startswith("Qm"):
        return base58_decode(cid)
    data = MULTIBASES[cid[0]](cid[1:])
    _version, pos = read_varint(data, 0)
    _codec, pos = read_varint(data, pos)
    return data[pos:]


def parse_pin_line(line):
    """(cid, name) from one line of a pin list, '' for a blank or comment line,
    None for a line that is not a CID (optionally followed by whitespace and a name)."""
    if any(ord(char) < 32 and char != "\t" or ord(char) == 127 for char in line):
        return None
    text = line.strip()
    if not text or text.startswith("#"):
        return ""
    parts = text.split(None, 1)
    name = parts[1].strip() if len(parts) > 1 else ""
    if not is_cid(parts[0]) or len(name) > MAX_NAME:
        return None
    return parts[0], name


class PinListWriter:
    """Checks a pin list line by line as its bytes arrive and writes the valid
    lines, as ``CID<TAB>NAME``, to a file: a list of a million lines never
    sits in memory, and an overlong line is skipped as it streams by.

    ``name`` is the list's default: the task gives it to each CID whose line
    has no name and that has none on the node either (see pin_add).
    """

    def __init__(self, path, name=""):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.out = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.name = name
        self.pending = b""
        self.skipping = False        # inside a line already known to be too long
        self.line_number = 0
        self.valid = 0
        self.invalid = 0
        self.invalid_lines = []

    def feed(self, data):
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self._line(line)
        if len(self.pending) > MAX_LINE_BYTES:
            if not self.skipping:
                self._count_invalid()
            self.skipping, self.pending = True, b""

    def _line(self, raw):
        if self.skipping:
            self.skipping = False      # the end of the long line, counted already
            return
        self.line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            self._count_invalid(numbered=True)
            return
        try:
            parsed = parse_pin_line(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            parsed = None
        if parsed is None:
            self._count_invalid(numbered=True)
        elif parsed:
            self.valid += 1
            self.out.write("%s\t%s\n" % parsed)

    def _count_invalid(self, numbered=False):
        if not numbered:
            self.line_number += 1
        self.invalid += 1
        if len(self.invalid_lines) < MAX_INVALID_LINES:
            self.invalid_lines.append(self.line_number)

    def add_line(self, text):
        """One line given as text (an entry of a JSON list)."""
        self.feed(text.replace("\n", " ").encode("utf-8", "surrogatepass") + b"\n")

    def close(self):
        if self.pending or self.skipping:
            self.feed(b"\n")
        self.out.close()

    def summary(self):
        return {"valid": self.valid, "invalid": self.invalid, "invalid_lines": self.invalid_lines}


def new_pin_list(files, name=""):
    """A PinListWriter into a new list file among ``files`` (TaskFiles); returns (token, writer)."""
    files.make_folder()
    token = secrets.token_hex(16)
    return token, PinListWriter(files.pin_list(token), name)


def read_pin_list(path, start=0):
    """(cid, name) of each line of a spooled list, from line ``start`` on."""
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            if index >= start:
                cid, _, name = line.rstrip("\n").partition("\t")
                yield cid, name
