"""safexml refuses DTDs, entities, oversize and malformed input, never quotes it, never opens a socket."""
from __future__ import annotations

import pickle
import socket
import time
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import ns, safexml
from niem_iepd.safexml import MalformedXMLError, UnsafeXMLError

SAMPLE = Path(__file__).resolve().parents[2] / "niem_iepd/samples/booking-notification.xml"
CANARY = "CANARY-Richardson-4711"


def billion_laughs(levels: int = 10) -> bytes:
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", '<!ENTITY lol0 "lol">']
    for level in range(1, levels):
        lines.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    lines += ["]>", f"<lolz>&lol{levels - 1};</lolz>"]
    return "\n".join(lines).encode()


@pytest.fixture()
def listener():
    """A TCP socket on 127.0.0.1 that records whether anything connected to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)

    def connected() -> bool:
        try:
            conn, _ = server.accept()
        except (socket.timeout, TimeoutError):
            return False
        conn.close()
        return True

    yield server.getsockname()[1], connected
    server.close()


def test_parses_the_sample_message():
    tree = safexml.parse(SAMPLE.read_bytes())
    assert tree.getroot().tag == ns.MESSAGE_ROOTS["BookingNotification"].text
    assert tree.docinfo.URL is None  # nothing in a received document resolves against the disk


def test_accepts_bytearray_and_memoryview_and_keeps_comments():
    data = b"<r><!-- note --><a>1</a></r>"
    assert safexml.parse(bytearray(data)).getroot()[0].tag is etree.Comment
    assert safexml.parse(memoryview(data)).getroot().find("a").text == "1"


def test_refuses_str_input():
    with pytest.raises(TypeError):
        safexml.parse("<r/>")  # type: ignore[arg-type]


def test_billion_laughs_is_refused_quickly():
    started = time.perf_counter()
    with pytest.raises(UnsafeXMLError, match="entity declaration"):
        safexml.parse(billion_laughs())
    assert time.perf_counter() - started < 1.0


def test_external_entity_file_is_refused_and_not_read():
    data = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(UnsafeXMLError, match="entity declaration") as caught:
        safexml.parse(data)
    assert "passwd" not in str(caught.value) and "root:" not in str(caught.value)


def test_external_parameter_entity_never_reaches_the_network(listener):
    port, connected = listener
    data = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % x SYSTEM "http://127.0.0.1:{port}/x.dtd"> %x;]>'
            "<r/>").encode()
    with pytest.raises(UnsafeXMLError):
        safexml.parse(data)
    assert not connected()


def test_doctype_alone_is_refused():
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        safexml.parse(b"<!DOCTYPE r><r/>")


def test_external_dtd_is_refused():
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        safexml.parse(b'<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r/>')


def test_utf16_doctype_is_refused():
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        safexml.parse(data)


def test_doctype_hidden_by_utf7_is_refused_after_parsing_without_network(listener):
    # The raw bytes hold no "<!DOCTYPE": only the parsed-document check can see it.
    port, connected = listener
    data = (f'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE r SYSTEM '
            f'+ACI-http://127.0.0.1:{port}/r.dtd+ACI-+AD4-<r/>').encode("ascii")
    assert b"<!DOCTYPE" not in data
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        safexml.parse(data)
    assert not connected()


def test_oversize_is_refused_before_parsing():
    data = b"<r>" + b"x" * 100 + b"</r>"
    with pytest.raises(UnsafeXMLError, match="over the limit of 50"):
        safexml.parse(data, max_bytes=50)
    assert safexml.parse(data, max_bytes=len(data)).getroot().tag == "r"


def test_default_size_limit():
    # Text split into chunks: libxml2's own limit (huge_tree=False) is 10 MB per text node.
    chunk = b"<a>" + b"x" * 4_999_991 + b"</a>"
    data = b"<r>" + chunk * 4 + b"</r>" + b" " * 1
    assert len(data) == safexml.DEFAULT_MAX_BYTES
    assert safexml.parse(data).getroot().tag == "r"
    with pytest.raises(UnsafeXMLError, match="over the limit"):
        safexml.parse(data + b" ")


def test_malformed_input_is_refused_without_quoting_it():
    with pytest.raises(MalformedXMLError) as caught:
        safexml.parse(f"<r><name>{CANARY}</nam></r>".encode())
    assert CANARY not in str(caught.value) and "line 1" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value, UnsafeXMLError)


@pytest.mark.parametrize("data", [b"", b"   \n", b"<r>&undeclared;</r>", b"<a>" * 300 + b"</a>" * 300])
def test_empty_undeclared_entity_and_excessive_depth_are_refused(data):
    with pytest.raises(MalformedXMLError):
        safexml.parse(data)


def test_refusals_pickle_and_keep_their_reason():
    error = pickle.loads(pickle.dumps(UnsafeXMLError("DOCTYPE / DTD is not allowed")))
    assert error.reason == "DOCTYPE / DTD is not allowed"
    assert str(error) == "XML refused: DOCTYPE / DTD is not allowed"


def test_parse_trusted_file_sets_the_base_url(tmp_path):
    tree = safexml.parse_trusted_file(SAMPLE)
    assert Path(tree.docinfo.URL) == SAMPLE.resolve()
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(billion_laughs())
    with pytest.raises(UnsafeXMLError):
        safexml.parse_trusted_file(hostile)


def test_threads_parsing_at_once_each_get_their_own_result_and_refusals():
    # safexml keeps one parser per thread: a refusal or a malformed document in one thread must not disturb
    # the documents another thread parses at the same time, nor the next document of the same thread.
    from concurrent.futures import ThreadPoolExecutor

    good = SAMPLE.read_bytes()
    inputs = [good, billion_laughs(3), b"<unclosed>", good.replace(b"<!--", b"<!-- x "), b"<a>\xff</a>"] * 40

    def outcome(data: bytes) -> str:
        try:
            return etree.QName(safexml.parse(data).getroot()).localname
        except MalformedXMLError:
            return "malformed"
        except UnsafeXMLError as error:
            return error.reason

    expected = [outcome(data) for data in inputs[:5]] * 40
    assert expected[:3] == ["BookingNotification", "entity declaration (DTD) is not allowed", "malformed"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(outcome, inputs)) == expected
