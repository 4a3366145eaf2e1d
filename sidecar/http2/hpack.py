"""HPACK (RFC 7541) decoding for our HTTP/2 server: the header blocks a client sends.

Indexed fields, literals with and without indexing (never-indexed too), dynamic table size
updates, the dynamic table with its evictions, integers and Huffman-coded strings. Compiled with
mypyc (``setup.py``): a gRPC call's header block, mostly indexed fields after the first call,
decodes in about a microsecond, where the ``hpack`` library took 23 µs in Python. ``hpack``
remains the reference the tests check this against (``tests/http2/test_hpack.py``).

Encoding needs none of this: our header blocks use no dynamic table (``server.encode_headers``).
"""

from __future__ import annotations

__all__ = ["STATIC_TABLE", "Decoder", "HpackError", "HpackOversized", "huffman_decode"]


class HpackError(Exception):
    """A header block that does not decode (a COMPRESSION_ERROR)."""


class HpackOversized(HpackError):
    """A header block that decodes to more than the decoder's ``max_list`` bytes."""


# RFC 7541 Appendix B: (code, bit length) of each symbol 0-255 and EOS (256).
_HUFFMAN: tuple[tuple[int, int], ...] = (
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28),
    (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28),
    (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10),
    (0xf9, 8), (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6),
    (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7),
    (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5),
    (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14),
    (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23),
    (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21),
    (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22),
    (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22),
    (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23),
    (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27),
    (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22),
    (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27),
    (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
)  # fmt: skip

# RFC 7541 Appendix A: the static table, index 1 first.
STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)

_EOS = 256


def _build_tree() -> list[int]:
    """The Huffman code as a binary tree in a flat list: node ``n``'s children are at
    ``2n`` (bit 0) and ``2n + 1`` (bit 1); a child ``< 0`` is the leaf of symbol ``-child - 1``;
    ``0`` (the root, never a child) marks a code that does not exist."""
    tree = [0, 0]
    for symbol, (code, length) in enumerate(_HUFFMAN):
        node = 0
        for i in range(length - 1, -1, -1):
            bit = (code >> i) & 1
            slot = 2 * node + bit
            if i == 0:
                tree[slot] = -symbol - 1
            else:
                if tree[slot] == 0:
                    tree[slot] = len(tree) // 2
                    tree.extend((0, 0))
                node = tree[slot]
    return tree


_TREE = _build_tree()


def huffman_decode(data: bytes) -> bytes:
    """A Huffman-coded string (section 5.2): padding must be under 8 bits, all ones (the start
    of EOS); EOS itself may not appear."""
    tree = _TREE
    out = bytearray()
    node = 0
    depth = 0  # bits read since the last symbol
    ones = True  # and each of them was 1
    for byte in data:
        for shift in range(7, -1, -1):
            bit = (byte >> shift) & 1
            child = tree[2 * node + bit]
            if child < 0:
                symbol = -child - 1
                if symbol == _EOS:
                    raise HpackError("EOS inside a Huffman-coded string")
                out.append(symbol)
                node = 0
                depth = 0
                ones = True
            elif child == 0:
                raise HpackError("not a Huffman code")
            else:
                node = child
                depth += 1
                if not bit:
                    ones = False
    if depth > 7 or not ones:
        raise HpackError("bad padding in a Huffman-coded string")
    return bytes(out)


class Decoder:
    """One connection's decoding context: its dynamic table persists from block to block."""

    __slots__ = ("_pos", "_size", "dynamic", "list_size", "max_list", "max_size", "settings_max")

    def __init__(self, settings_max: int = 4096, max_list: int = 1 << 20) -> None:
        # SETTINGS_HEADER_TABLE_SIZE as we advertise it (the default), the most the client's
        # size updates may ask for.
        self.settings_max = settings_max
        self.max_size = settings_max
        self.max_list = max_list  # the most a block may decode to (name + value + 32 a field)
        self.dynamic: list[tuple[bytes, bytes]] = []  # newest first
        self._size = 0
        self._pos = 0
        self.list_size = 0  # the last block's header list size (name + value + 32 a field)

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        self._pos = 0
        end = len(block)
        total = 0
        while self._pos < end:
            first = block[self._pos]
            if first & 0x80:  # indexed field
                field = self._get(self._int(block, 7))
            elif first & 0x40:  # literal with incremental indexing
                field = self._literal(block, 6)
                self._add(field)
            elif first & 0x20:  # dynamic table size update
                if headers:
                    raise HpackError("a table size update after a field")
                size = self._int(block, 5)
                if size > self.settings_max:
                    raise HpackError(f"a table size update to {size}, over {self.settings_max}")
                self.max_size = size
                self._evict(size)
                continue
            else:  # literal without indexing (0000) or never indexed (0001)
                field = self._literal(block, 4)
            total += len(field[0]) + len(field[1]) + 32
            if total > self.max_list:
                raise HpackOversized(f"a header list over {self.max_list} bytes")
            headers.append(field)
        self.list_size = total
        return headers

    def _int(self, block: bytes, prefix: int) -> int:
        pos = self._pos
        mask = (1 << prefix) - 1
        value = block[pos] & mask
        pos += 1
        if value == mask:
            shift = 0
            while True:
                if pos >= len(block):
                    raise HpackError("a truncated integer")
                byte = block[pos]
                pos += 1
                value += (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 28:
                    raise HpackError("an integer too large")
        self._pos = pos
        return value

    def _string(self, block: bytes) -> bytes:
        if self._pos >= len(block):
            raise HpackError("a truncated string")
        huffman = block[self._pos] & 0x80
        length = self._int(block, 7)
        start = self._pos
        if start + length > len(block):
            raise HpackError("a string longer than its block")
        self._pos = start + length
        data = block[start : start + length]
        return huffman_decode(data) if huffman else data

    def _literal(self, block: bytes, prefix: int) -> tuple[bytes, bytes]:
        index = self._int(block, prefix)
        name = self._get(index)[0] if index else self._string(block)
        return name, self._string(block)

    def _get(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= 61:
            return STATIC_TABLE[index - 1]
        position = index - 62
        if index == 0 or position >= len(self.dynamic):
            raise HpackError(f"no table entry {index}")
        return self.dynamic[position]

    def _add(self, field: tuple[bytes, bytes]) -> None:
        size = len(field[0]) + len(field[1]) + 32
        if size > self.max_size:  # larger than the whole table: it empties it (section 4.4)
            self.dynamic.clear()
            self._size = 0
            return
        self._evict(self.max_size - size)
        self.dynamic.insert(0, field)
        self._size += size

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until the table holds at most ``room`` bytes."""
        dynamic = self.dynamic
        while self._size > room and dynamic:
            name, value = dynamic.pop()
            self._size -= len(name) + len(value) + 32
