"""The sans-IO request reader: Redis's framing rules, limits and exact errors."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawclient import pack
from taskstore.protocol import ProtocolError, QueryBufferLimit, ReaderLimits, RequestReader
from taskstore.protocol.reader import split_inline


def read_all(data: bytes, *, chunk: int | None = None, **limits: int):
    """Feed ``data`` whole or in chunks; return (commands, error text or None)."""
    r = RequestReader(ReaderLimits(**limits) if limits else None)
    cmds: list[list[bytes]] = []
    step = chunk or len(data) or 1
    for i in range(0, max(len(data), 1), step):
        r.feed(data[i : i + step])
        got, err = r.parse()
        cmds += got
        if err is not None:
            return cmds, str(err)
    return cmds, None


def both_ways(data: bytes, **limits: int):
    """Whole, byte by byte and in random chunks must agree (fast path == exact path)."""
    whole = read_all(data, **limits)
    assert read_all(data, chunk=1, **limits) == whole
    rnd = random.Random(len(data))
    assert read_all(data, chunk=rnd.randint(1, 7), **limits) == whole
    return whole


def test_multibulk_pipeline() -> None:
    data = pack(b"SET", b"k", b"v") + pack(b"GET", b"k") + pack(b"PING")
    assert both_ways(data) == ([[b"SET", b"k", b"v"], [b"GET", b"k"], [b"PING"]], None)


def test_binary_and_empty_arguments() -> None:
    data = pack(b"ECHO", b"\r\n\x00*3\r\n$") + pack(b"ECHO", b"")
    assert both_ways(data) == ([[b"ECHO", b"\r\n\x00*3\r\n$"], [b"ECHO", b""]], None)


def test_inline_commands_and_quoting() -> None:
    data = b'PING\r\nTASK.GET abc\nset "a b" \'c\\\'d\' "\\x41\\n\\t"\r\n'
    assert both_ways(data) == (
        [[b"PING"], [b"TASK.GET", b"abc"], [b"set", b"a b", b"c'd", b"A\n\t"]],
        None,
    )


def test_mixed_inline_and_multibulk() -> None:
    data = b"PING\r\n" + pack(b"ECHO", b"x") + b"ECHO y\r\n" + pack(b"PING")
    assert both_ways(data) == ([[b"PING"], [b"ECHO", b"x"], [b"ECHO", b"y"], [b"PING"]], None)


@pytest.mark.parametrize("empty", [b"\r\n", b"\n", b"   \r\n", b"*0\r\n", b"*-1\r\n", b"*-10\r\n"])
def test_empty_requests_are_ignored(empty: bytes) -> None:
    # protocol.tcl: "Handle an empty query", "Negative multibulk length"
    assert both_ways(empty + pack(b"PING") + empty) == ([[b"PING"]], None)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        # the cases of Redis's tests/unit/protocol.tcl
        (b"*3000000000\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1048577\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "ERR Protocol error: expected '$', got 'f'"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'"),
        (
            b'set """test-key""" test-value\r\nping\r\n',
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (b'set "unterminated\r\n', "ERR Protocol error: unbalanced quotes in request"),
        (b"set 'unterminated\r\n", "ERR Protocol error: unbalanced quotes in request"),
        # element types other than bulk strings
        (b"*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'"),
        (b"*2\r\n$3\r\nGET\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\na\r\n", "ERR Protocol error: expected '$', got '*'"),
        # leading zeros, signs and spaces are not numbers to Redis
        (b"*01\r\n$4\r\nPING\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$04\r\nPING\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$+4\r\nPING\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$-0\r\n", "ERR Protocol error: invalid bulk length"),
    ],
)
def test_protocol_errors(data: bytes, error: str) -> None:
    _, err = both_ways(data)
    assert err == error


def test_nul_bytes_hide_line_ends_as_in_redis() -> None:
    # Redis finds line ends with strchr(), which stops at a NUL byte: "*\x00\r\n" is
    # an unfinished header to Redis, until the buffer passes 64 KiB (protocol.tcl's
    # desync tests rely on that).
    assert both_ways(b"*\x00\r\n") == ([], None)
    assert both_ways(b"\x00\r\n") == ([], None)
    assert read_all(b"*\x00" * 40000)[1] == "ERR Protocol error: too big mbulk count string"
    assert read_all(b"\x00" * 70000)[1] == "ERR Protocol error: too big inline request"
    # NUL inside a bulk payload is just data
    assert both_ways(pack(b"ECHO", b"a\x00\r\nb")) == ([[b"ECHO", b"a\x00\r\nb"]], None)


def test_commands_before_an_error_are_kept() -> None:
    data = pack(b"PING") + pack(b"ECHO", b"a") + b"*1\r\nfoo\r\n" + pack(b"PING")
    assert both_ways(data) == (
        [[b"PING"], [b"ECHO", b"a"]],
        "ERR Protocol error: expected '$', got 'f'",
    )


def test_bulk_length_limit_is_configurable() -> None:
    ok = pack(b"ECHO", b"x" * 100)
    assert both_ways(ok, proto_max_bulk_len=100)[1] is None
    too_big = pack(b"ECHO", b"x" * 101)
    assert (
        both_ways(too_big, proto_max_bulk_len=100)[1] == "ERR Protocol error: invalid bulk length"
    )


def test_too_big_header_and_inline_lines() -> None:
    assert read_all(b"*" + b"1" * 70000)[1] == "ERR Protocol error: too big mbulk count string"
    assert read_all(b"*1\r\n$" + b"1" * 70000)[1] == "ERR Protocol error: too big bulk count string"
    assert read_all(b"PING " + b"x" * 70000)[1] == "ERR Protocol error: too big inline request"
    # a long inline line that does end in time is fine
    assert read_all(b"ECHO " + b"x" * 60000 + b"\r\n")[0] == [[b"ECHO", b"x" * 60000]]


def test_unauthenticated_limits() -> None:
    def unauth(data: bytes):
        r = RequestReader()
        r.unauthenticated = True
        r.feed(data)
        return r.parse()

    assert unauth(pack(*[b"a"] * 10)) == ([[b"a"] * 10], None)
    assert (
        str(unauth(pack(*[b"a"] * 11))[1]) == "ERR Protocol error: unauthenticated multibulk length"
    )
    assert (
        str(unauth(pack(b"AUTH", b"x" * 16385))[1])
        == "ERR Protocol error: unauthenticated bulk length"
    )
    assert unauth(pack(b"AUTH", b"x" * 16384))[1] is None
    assert (
        str(unauth(b"a " * 11 + b"\r\n")[1])
        == "ERR Protocol error: unauthenticated multibulk length"
    )
    # one command per parse() while unauthenticated: the next one's limits may change
    r = RequestReader()
    r.unauthenticated = True
    r.feed(pack(b"AUTH", b"pw") + pack(b"PING"))
    assert r.parse() == ([[b"AUTH", b"pw"]], None)
    r.unauthenticated = False
    assert r.parse() == ([[b"PING"]], None)


def test_query_buffer_limit() -> None:
    r = RequestReader(ReaderLimits(client_query_buffer_limit=1024))
    r.feed(b"*1\r\n$2000\r\n" + b"x" * 1000)
    with pytest.raises(QueryBufferLimit):
        r.feed(b"x" * 100)


def test_declared_sizes_reserve_no_memory() -> None:
    """*N and $N headers cost what was sent, not what they announce."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        readers = []
        for header in (b"*1048576\r\n", b"*2\r\n$67108864\r\n", b"*1000\r\n$1\r\na\r\n"):
            r = RequestReader()
            r.feed(header)
            assert r.parse() == ([], None)
            readers.append(r)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert read_all(b"*200000000\r\n")[1] == "ERR Protocol error: invalid multibulk length"
    assert read_all(b"*1\r\n$2000000000\r\n")[1] == "ERR Protocol error: invalid bulk length"


def test_large_value_arrives_in_pieces() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = pack(b"SET", b"k", value) + pack(b"PING")
    assert read_all(data, chunk=65536) == ([[b"SET", b"k", value], [b"PING"]], None)


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"a b  c", [b"a", b"b", b"c"]),
        (b'"a\\"b"', [b'a"b']),
        (b"'a\"b'", [b'a"b']),
        (b'"\\x4a\\x4B"', [b"JK"]),
        (b'"\\xzz"', [b"xzz"]),
        (b'""', [b""]),
        (b'"a"b', None),
        (b"'a'b", None),
        (b"", []),
    ],
)
def test_split_inline(line: bytes, args: list[bytes] | None) -> None:
    assert split_inline(line) == args


_arg = st.binary(max_size=40)
_cmd = st.lists(_arg, min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(_cmd, min_size=1, max_size=30), st.data())
def test_any_split_gives_the_same_commands(cmds: list[list[bytes]], data: st.DataObject) -> None:
    stream = b"".join(pack(*c) for c in cmds)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    r = RequestReader()
    got: list[list[bytes]] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        r.feed(stream[last:cut])
        last = cut
        out, err = r.parse()
        assert err is None
        got += out
    assert got == cmds


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_crashes_and_paths_agree(data: bytes) -> None:
    whole = read_all(data)
    assert read_all(data, chunk=1) == whole
    if whole[1] is not None:
        assert whole[1].startswith("ERR Protocol error: ")


def test_protocol_error_type() -> None:
    assert issubclass(ProtocolError, Exception)


_PING = b"*1\r\n$4\r\nPING\r\n"


@pytest.mark.parametrize(
    "data",
    [
        # four simple strings (3 bytes shorter each than bulk strings) and three verbatim
        # strings (4 bytes longer each): the same size as seven canonical elements
        _PING * 2 + b"*7\r\n" + b"+PING\r\n" * 4 + b"=8\r\ntxt:PING\r\n" * 3,
        # a set or a push at the top, the size of an array of as many elements
        _PING * 3 + b"~1\r\n$4\r\nPING\r\n",
        _PING * 3 + b">1\r\n$4\r\nPING\r\n",
        # the same, in a read over 8 KiB (sizes, not a full comparison, below that)
        _PING * 600 + b"*7\r\n" + b"+PING\r\n" * 4 + b"=8\r\ntxt:PING\r\n" * 3,
        _PING * 600 + b"~1\r\n$4\r\nPING\r\n",
    ],
    ids=["status+verbatim", "set", "push", "status+verbatim-large", "set-large"],
)
def test_reads_hiredis_takes_but_redis_refuses_go_the_exact_way(data: bytes) -> None:
    """hiredis reads any reply type; a request made of others than arrays of bulk strings
    must get what Redis gives it (a protocol error, or inline commands), however the sizes
    add up."""
    whole = read_all(data)
    assert whole == read_all(data, chunk=1)  # the exact path, a byte at a time
    cmds, err = whole
    assert err is not None or [b"~1"] in cmds or [b">1"] in cmds, whole


@pytest.mark.parametrize(
    "data",
    [
        b"*1\r\n$04\r\nPING\r\n",  # leading zeros
        b"*01\r\n$4\r\nPING\r\n",
        b"*1\r\n$00\r\n\r\n",
        b"*1\r\n$-0\r\n",
        b"*1\r\n$+4\r\nPING\r\n",  # a sign
        b"*1\r\n$ 4\r\nPING\r\n",  # spaces
        b"*1\r\n$4 \r\nPING\r\n",
    ],
)
def test_hiredis_refuses_every_number_that_is_not_canonical(data: bytes) -> None:
    """What the reader's whole-read check relies on (reader._canonical): headers made only
    of ``*``, ``$``, digits and CRLF that hiredis accepts are canonical."""
    import hiredis

    reader = hiredis.Reader()
    reader.feed(data)
    with pytest.raises(hiredis.ProtocolError):
        reader.gets()


def _element(kind: str, value: bytes) -> bytes:
    """``value`` as one RESP element of type ``kind`` (what hiredis reads, Redis refuses
    unless it is ``$``)."""
    if kind == "$":
        return b"$%d\r\n%b\r\n" % (len(value), value)
    if kind in "+(":
        return kind.encode() + value + b"\r\n"
    if kind == "=":
        return b"=%d\r\ntxt:%b\r\n" % (len(value) + 4, value)
    if kind == "|":  # an attribute before the element
        return b"|1\r\n+a\r\n+b\r\n" + _element("$", value)
    return {
        ":": b":12\r\n",
        "_": b"_\r\n",
        ",": b",1.5\r\n",
        "#": b"#t\r\n",
        "-": b"-ERR x\r\n",
        "*": b"*1\r\n" + _element("$", value),
        "%": b"%1\r\n" + _element("$", value) + _element("$", value),
    }[kind]


_plain = st.binary(min_size=0, max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["*", "*", "*", "~", ">", "%"]),
            st.lists(
                st.tuples(
                    st.sampled_from(["$"] * 12 + list("+=(|:_,#-*%")),
                    st.from_regex(rb"\A[0-9]{1,6}\Z") | _plain,
                ),
                min_size=1,
                max_size=4,
            ),
        ),
        min_size=2,
        max_size=6,
    ),
    st.integers(0, 700),
)
def test_any_element_type_in_a_batch_is_read_as_redis_reads_it(
    cmds: list[tuple[str, list[tuple[str, bytes]]]], filler: int
) -> None:
    """Whole reads of several requests, each element of any RESP3 type (sizes that may add
    up, digits where numbers go), checked against the exact path byte by byte: the fast
    check must never take a read Redis would refuse. ``filler`` plain PINGs in front take
    some reads over 8 KiB (the size check)."""
    data = _PING * filler
    for top, elements in cmds:
        if top == "%" and len(elements) % 2:
            top = "*"
        count = len(elements) // 2 if top == "%" else len(elements)
        data += b"%b%d\r\n" % (top.encode(), count)
        for kind, value in elements:
            if kind == "(" and not value.isdigit():
                kind = "$"
            data += _element(kind, value)
    assert read_all(data) == read_all(data, chunk=1)


def test_a_pipeline_cut_anywhere_reads_the_same() -> None:
    """Two reads, cut at every offset: the first read's check must notice a request it holds
    only part of, even when the part is a whole header (``*2\\r\\n``) or ends in CRLF."""
    cmds = [[b"PING"], [b"SET", b"k", b"v\r\n"], [b"GET", b"k"], [b"PING"], [b"ECHO", b"\r"]] * 2
    stream = b"".join(pack(*c) for c in cmds)
    for cut in range(len(stream) + 1):
        r = RequestReader()
        got: list[list[bytes]] = []
        for part in (stream[:cut], stream[cut:]):
            r.feed(part)
            out, err = r.parse()
            assert err is None, cut
            got += out
        assert got == cmds, cut
