"""Our HPACK decoder (``sidecar.http2.hpack``) against RFC 7541's own examples (Appendix C) and
against ``hpack``, python-hyper's implementation, as the encoder of arbitrary header lists."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.http2.hpack import STATIC_TABLE, Decoder, HpackError, HpackOversized, huffman_decode

# RFC 7541 C.3 (requests, no Huffman) and C.4 (the same requests, Huffman-coded), one decoder
# across each series: the dynamic table carries from request to request.
C3 = [
    "828684410f7777772e6578616d706c652e636f6d",
    "828684be58086e6f2d6361636865",
    "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
]
C4 = [
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
]
C_REQUESTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
        (b"cache-control", b"no-cache"),
    ],
    [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ],
]
# RFC 7541 C.6: responses, Huffman-coded, with a 256-byte table: entries are evicted.
C6 = [
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
]
C6_LAST = [
    (b":status", b"200"),
    (b"cache-control", b"private"),
    (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
    (b"location", b"https://www.example.com"),
    (b"content-encoding", b"gzip"),
    (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
]


@pytest.mark.parametrize("series", [C3, C4], ids=["C.3 plain", "C.4 Huffman"])
def test_rfc_request_examples(series: list[str]) -> None:
    decoder = Decoder()
    for block, expected in zip(series, C_REQUESTS, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == expected
    assert decoder.dynamic == [
        (b"custom-key", b"custom-value"),
        (b"cache-control", b"no-cache"),
        (b":authority", b"www.example.com"),
    ]


def test_the_decoded_list_size_is_kept_for_the_limit() -> None:
    decoder = Decoder()
    decoder.decode(bytes.fromhex(C3[0]))
    assert decoder.list_size == sum(len(n) + len(v) + 32 for n, v in C_REQUESTS[0])


def test_rfc_response_examples_with_evictions() -> None:
    decoder = Decoder(settings_max=256)
    for block in C6:
        headers = decoder.decode(bytes.fromhex(block))
    assert headers == C6_LAST
    assert decoder.dynamic == [
        (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
        (b"content-encoding", b"gzip"),
        (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
    ]


def test_the_static_table_is_the_rfcs() -> None:
    assert len(STATIC_TABLE) == 61
    assert STATIC_TABLE[0] == (b":authority", b"")
    assert STATIC_TABLE[7] == (b":status", b"200")
    assert STATIC_TABLE[60] == (b"www-authenticate", b"")


names = st.binary(min_size=1, max_size=40).map(bytes.lower)
fields = st.lists(st.tuples(names, st.binary(max_size=300)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(fields, st.booleans(), st.booleans()), min_size=1, max_size=8),
    st.sampled_from([0, 64, 256, 4096]),
)
def test_whatever_hpack_encodes_decodes_the_same(
    blocks: list[tuple[list[tuple[bytes, bytes]], bool, bool]], table_size: int
) -> None:
    """Any header lists, Huffman-coded or not, indexed, never indexed (``sensitive``) or with a
    smaller table (a size update, then evictions)."""
    encoder = hpack.Encoder()
    decoder = Decoder()
    encoder.header_table_size = table_size
    for headers, huffman, sensitive in blocks:
        encoded = [
            hpack.HeaderTuple(n, v) if not sensitive else hpack.NeverIndexedHeaderTuple(n, v)
            for n, v in headers
        ]
        assert decoder.decode(encoder.encode(encoded, huffman=huffman)) == headers


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_huffman_round_trips(data: bytes) -> None:
    from hpack.huffman import HuffmanEncoder
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

    assert huffman_decode(HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(data)) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_decodes_or_is_an_hpack_error(data: bytes) -> None:
    try:
        Decoder().decode(data)
    except HpackError:
        pass


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "an empty dynamic table's first entry"),
        (b"\xff\x80\x80\x80\x80\x80\x01", "an integer too large"),
        (b"\xff\x80", "a truncated integer"),
        (b"\x00\x05ab", "a string longer than its block"),
        (b"\x00", "a truncated string"),
        (b"\x00\x81\x00\x00", "a Huffman string of zero bits: bad padding"),
        (b"\x00\x81a\x84\xff\xff\xff\xff", "EOS in a Huffman string"),
        (b"\x3f\xe2\x1f", "a size update over SETTINGS_HEADER_TABLE_SIZE"),
        (b"\x82\x20", "a size update after a field"),
    ],
)
def test_what_does_not_decode(block: bytes, why: str) -> None:
    with pytest.raises(HpackError):
        Decoder().decode(block)


def test_a_block_that_decodes_too_large_is_refused() -> None:
    """A bomb: one large entry in the table, then many one-byte references to it."""
    decoder = Decoder(max_list=100_000)
    big = b"\x40\x01x" + b"\x7f\xa1\x1e" + b"v" * 4000  # literal with indexing, 4000-byte value
    with pytest.raises(HpackOversized):
        decoder.decode(big + b"\xbe" * 100)


def test_a_size_update_evicts_and_bounds_the_table() -> None:
    decoder = Decoder()
    decoder.decode(b"\x40\x01a\x01b" + b"\x40\x01c\x01d")
    assert len(decoder.dynamic) == 2
    decoder.decode(b"\x20")  # size 0: everything evicted
    assert decoder.dynamic == []
    decoder.decode(b"\x40\x01a\x01b")  # too large for a 0-byte table: not added
    assert decoder.dynamic == []
