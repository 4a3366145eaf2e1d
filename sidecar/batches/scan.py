"""An incremental scanner of a batch create body: bytes go in as they arrive, the raw bytes of each
entry of its ``requests`` array come out, so a create never holds the whole body.

The body is ``{"requests": [entry, ...]}``. The scanner checks the grammar around the entries
itself (the top-level object, its one key, the commas of the array, nothing after the object)
and cuts each entry where it ends, counting brackets outside strings, with the string and escape
state carried from one chunk to the next; the search for the next bracket or quote is a regular
expression (C, at memory speed), so long strings cost no Python per byte. It does not check an
entry's own grammar: the caller decodes each entry (msgspec), and that is what checks it. A body
is valid JSON exactly when the scanner accepts it and every entry it cut decodes (a malformed
entry is cut at some balanced bracket and fails to decode; a valid one is cut at its end).

``EntryScanner.feed(data)`` returns the entries ``data`` completed; ``close()`` checks the body is
complete. A body that is not valid JSON, or not that shape, raises ``MalformedBatch`` with the
message the API answers (``requests: Field required ...``, ``extra: Extra inputs are not
permitted``, ``request body is not valid JSON: ...``). Held at a time: one chunk plus the entry
being cut.
"""

from __future__ import annotations

import re

import msgspec

from ..core.jsonbytes import BAD_JSON

__all__ = ["EntryScanner", "MalformedBatch"]

_WS = re.compile(rb"[ \t\r\n]*")
# Within an entry: what is neither a bracket nor the start of a string the buffer ends in
# (complete strings, numbers, literals, commas, colons, whitespace), possessive so it never
# backtracks; and the rest of a string, its closing quote (group 1) if the buffer holds it.
_SKIP = re.compile(rb'(?:[^\[\]{}"]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+(")?', re.DOTALL)
_SCALAR_END = re.compile(rb"[^0-9A-Za-z.+\-]")  # the end of a number, true, false or null
_VALUE_START = frozenset(b'{["-0123456789tfn')
# The bytes the scan compares (a bytearray's items are ints).
_QUOTE, _COMMA, _COLON_CHAR = ord('"'), ord(","), ord(":")
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = ord("{"), ord("}"), ord("["), ord("]")
_REQUESTS = "requests"
_KEYS_REQUIRED = "requests: Field required (a list of {custom_id, params})"

# Where the scanner is, between entries and around them.
_START = 0  # before the body's first value
_KEY = 1  # after "{" or ",": a key (or "}" right after "{")
_COLON = 2  # after a key
_ARRAY = 3  # after "[": the first entry, or "]"
_NEXT = 4  # after an entry: "," or "]"
_ENTRY = 5  # after ",": an entry
_MEMBER = 6  # after the requests array: "," or "}"
_END = 7  # after the closing "}": nothing but whitespace
_CUT = 8  # inside an entry


class MalformedBatch(ValueError):
    """The body is not ``{"requests": [...]}`` in valid JSON (the message says what is wrong)."""


def _not_json(what: str, offset: int) -> MalformedBatch:
    return MalformedBatch(f"request body is not valid JSON: {what} at byte {offset}")


class EntryScanner:
    """Feed the body with ``feed``; each call returns the raw entries it completed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # bytes of the body dropped from the front of the buffer
        self._pos = 0  # the next byte to look at
        self._state = _START
        self._first_key = True
        self._seen_requests = False
        self.count = 0  # entries cut so far
        # The entry (or key) being cut: where it starts, its bracket depth, in a string or not.
        self._start = 0
        self._depth = 0
        self._in_string = False

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        self._scan(out)
        # Drop what was read; keep the entry or key being cut.
        cutting = self._state == _CUT or (self._state == _KEY and self._in_string)
        keep = min(self._start if cutting else self._pos, len(buf))
        if keep:
            del buf[:keep]
            self._offset += keep
            self._pos -= keep
            self._start -= keep
        return out

    def close(self) -> None:
        """The body ended: it must have been complete."""
        if self._state == _START:
            raise MalformedBatch("request body is not valid JSON: it is empty")
        if self._state != _END:
            raise _not_json("truncated", self._offset + len(self._buf))

    # -- the scan ----------------------------------------------------------------------------

    def _scan(self, out: list[bytes]) -> None:
        buf = self._buf
        size = len(buf)
        while True:
            state = self._state
            if state == _CUT:
                if not self._cut(out):
                    return
                continue
            if state == _KEY and self._in_string:
                if not self._key():
                    return
                continue
            pos = _WS.match(buf, self._pos).end()  # type: ignore[union-attr]  # always matches
            self._pos = pos
            if pos >= size:
                return
            c = buf[pos]
            if state == _START:
                if c == _LBRACE:
                    self._state, self._pos = _KEY, pos + 1
                elif c in _VALUE_START:
                    raise MalformedBatch("request body must be a JSON object")
                else:
                    raise self._unexpected(pos, "a JSON object")
            elif state == _KEY:
                if c == _QUOTE:
                    self._start, self._pos, self._in_string = pos, pos + 1, True
                elif c == _RBRACE and self._first_key:
                    raise MalformedBatch(_KEYS_REQUIRED)
                else:
                    raise self._unexpected(pos, "a key")
            elif state == _COLON:
                if c != _COLON_CHAR:
                    raise self._unexpected(pos, "':'")
                after = _WS.match(buf, pos + 1).end()  # type: ignore[union-attr]
                if after >= size:
                    return  # the value's first byte decides: wait for it (the colon is read again)
                if buf[after] != _LBRACKET:
                    raise MalformedBatch(_KEYS_REQUIRED)
                self._state, self._pos = _ARRAY, after + 1
            elif state == _ARRAY:
                if c == _RBRACKET:
                    raise MalformedBatch("requests: List should have at least 1 item")
                self._begin(pos, c)
            elif state == _NEXT:
                if c == _COMMA:
                    self._state, self._pos = _ENTRY, pos + 1
                elif c == _RBRACKET:
                    self._state, self._pos = _MEMBER, pos + 1
                else:
                    raise self._unexpected(pos, "',' or ']'")
            elif state == _ENTRY:
                self._begin(pos, c)
            elif state == _MEMBER:
                if c == _COMMA:
                    self._state, self._pos, self._first_key = _KEY, pos + 1, False
                elif c == _RBRACE:
                    self._state, self._pos = _END, pos + 1
                else:
                    raise self._unexpected(pos, "',' or '}'")
            else:  # _END
                raise self._unexpected(pos, "the end of the body")

    def _unexpected(self, pos: int, expected: str) -> MalformedBatch:
        return _not_json(f"expected {expected}, got {chr(self._buf[pos])!r}", self._offset + pos)

    def _begin(self, pos: int, c: int) -> None:
        """An entry starts at ``pos`` with byte ``c``."""
        if c not in _VALUE_START:
            raise self._unexpected(pos, "a value")
        self._state, self._start, self._pos = _CUT, pos, pos + 1
        self._depth = 1 if c == _LBRACE or c == _LBRACKET else 0
        self._in_string = c == _QUOTE

    def _key(self) -> bool:
        """Read on in a key; False when the buffer ends first."""
        end = self._string_end()
        if end < 0:
            return False
        raw = bytes(self._buf[self._start : end])
        try:
            key = msgspec.json.decode(raw)
        except BAD_JSON as exc:
            raise _not_json(f"a key is not a valid string ({exc})", self._offset + self._start) from None
        if key != _REQUESTS:
            raise MalformedBatch(f"{key}: Extra inputs are not permitted")
        if self._seen_requests:
            raise MalformedBatch("requests: given twice")
        self._seen_requests = True
        self._state, self._pos, self._in_string = _COLON, end, False
        return True

    def _string_end(self) -> int:
        """In a string: the index past its closing quote, or -1 when the buffer ends first."""
        m = _STRING_REST.match(self._buf, self._pos)
        assert m is not None  # it matches the empty string
        self._pos = m.end()  # when incomplete: the end, or a backslash whose escaped byte is to come
        return m.end() if m.group(1) is not None else -1

    def _cut(self, out: list[bytes]) -> bool:
        """Read on in an entry; True once it is cut (appended to ``out``), False when the
        buffer ends first."""
        buf = self._buf
        while True:
            if self._in_string:
                end = self._string_end()
                if end < 0:
                    return False
                self._in_string = False
                if self._depth == 0:  # the entry is a string
                    break
                continue
            if self._depth == 0:  # a number, true, false or null
                m = _SCALAR_END.search(buf, self._pos)
                if m is None:
                    self._pos = len(buf)
                    return False
                end = self._pos = m.start()
                break
            # Past everything but brackets and a string the buffer ends in, in one step.
            i = _SKIP.match(buf, self._pos).end()  # type: ignore[union-attr]  # always matches
            if i >= len(buf):
                self._pos = i
                return False
            c = buf[i]
            self._pos = i + 1
            if c == _QUOTE:
                self._in_string = True
            elif c == _LBRACE or c == _LBRACKET:
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    end = i + 1
                    break
        out.append(bytes(buf[self._start : end]))
        self.count += 1
        self._state = _NEXT
        return True
