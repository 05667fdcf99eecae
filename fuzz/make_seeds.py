#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/ (see fuzz/README.md).

Real client captures come from tests/fixtures/sniff and Istio YAML from
tests/fixtures/istio and examples/; the rest is built here byte by byte."""
import hashlib, pathlib, struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
SNIFF = ROOT / "tests" / "fixtures" / "sniff"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def tls():
    for f in sorted(SNIFF.glob("*.bin")):
        wire = f.read_bytes()
        if wire[:1] != b"\x16":
            continue
        put("tls_sni", f.stem, wire)
        # The handshake message alone, re-cut into records of 1, 7, 64 and 200 bytes.
        n = struct.unpack(">H", wire[3:5])[0]
        message = wire[5:5 + n]
        for size in (1, 7, 64, 200):
            put("tls_sni", f"{f.stem}_records_{size}", bytes([size - 1]) + message)


def http1():
    for f in sorted(SNIFF.glob("*http1*.bin")):
        put("http1_head", f.stem, f.read_bytes())
    heads = {
        "http10_no_host": b"GET /index.html HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
        "options_asterisk": b"OPTIONS * HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
        "post_chunked": b"POST /v1/items HTTP/1.1\r\nHost: API.Example.Test:8080\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "post_length": b"PUT /x HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "absolute_https": b"GET https://api.example.test/a?b#c HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
        "smuggle_both": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    }
    for name, head in heads.items():
        put("http1_head", name, head)


def http1_response():
    # The first byte: bit 0 says the request was HEAD, the rest the piece size less one.
    answers = {
        "length": (0x0e, b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello"),
        "chunked_trailers": (0x02, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nwiki\r\n5\r\npedia\r\n0\r\nx-sum: 1\r\n\r\nleft"),
        "gzip_chunked": (0x00, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"),
        "until_close": (0x20, b"HTTP/1.0 200 OK\r\n\r\nall of it until the end"),
        "interim": (0x04, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
        "head_with_length": (0x01, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        "length_and_chunked": (0x06, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"),
        "cut_chunk": (0x00, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"),
    }
    for name, (control, answer) in answers.items():
        put("http1_response", name, bytes([control]) + answer)


def http2():
    capture = (SNIFF / "curl_h2_prior_knowledge.bin").read_bytes()
    assert capture.startswith(PREFACE)
    put("http2_preface", "curl_h2_prior_knowledge", capture[len(PREFACE):])
    # The HEADERS payload of the capture: the frame after SETTINGS (and WINDOW_UPDATE).
    pos, block = len(PREFACE), None
    while pos + 9 <= len(capture):
        n = int.from_bytes(capture[pos:pos + 3], "big")
        kind = capture[pos + 3]
        if kind == 1:
            block = capture[pos + 9:pos + 9 + n]
            break
        pos += 9 + n
    put("hpack", "curl_h2_headers", b"\x00" + block)
    # RFC 7541 appendix C: C.3 (plain) and C.4 (Huffman), first request, then
    # the first two requests as two blocks on one decoder.
    c31 = bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")
    c41 = bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")
    c42 = bytes.fromhex("828684be5886a8eb10649cbf")
    put("hpack", "rfc7541_c3_1", b"\x00" + c31)
    put("hpack", "rfc7541_c4_1_2", bytes([255 * len(c41) // (len(c41) + len(c42)) + 1]) + c41 + c42)
    # Connection frames before HEADERS: SETTINGS, PING, PRIORITY, then HEADERS+CONTINUATION.
    settings = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x64"
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
    headers = b"\x00\x00" + bytes([len(c31) - 5]) + b"\x01\x00\x00\x00\x00\x01" + c31[:-5]
    cont = b"\x00\x00\x05\x09\x04\x00\x00\x00\x01" + c31[-5:]
    put("http2_preface", "continuation", settings + ping + headers + cont)


def dns_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"


def dns():
    def query(qid, name, qtype, edns=None):
        msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
        msg += dns_name(name) + struct.pack(">HH", qtype, 1)
        if edns:
            msg += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
        return msg

    def answer(qid, name, records):
        msg = struct.pack(">HHHHHH", qid, 0x8180, 1, len(records), 0, 0)
        msg += dns_name(name) + struct.pack(">HH", 1, 1)
        for owner, rtype, ttl, rdata in records:
            msg += dns_name(owner) + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata
        return msg

    def pair(q, a=b""):
        return struct.pack(">H", len(q)) + q + a

    put("dns_request", "a_plain", pair(query(0x1234, "api.example.test", 1)))
    put("dns_request", "aaaa_edns", pair(query(7, "API.Example.Test", 28, edns=4096)))
    put("dns_request", "txt_cluster", pair(query(9, "db.default.svc.cluster.local", 16)))
    cname = answer(0x4242, "www.example.test", [
        ("www.example.test", 5, 300, dns_name("edge.example.test")),
        ("edge.example.test", 1, 60, bytes([203, 0, 113, 7])),
        ("other.example.test", 1, 60, bytes([203, 0, 113, 8])),
    ])
    put("dns_request", "forward_cname", pair(query(0x4242, "www.example.test", 1), cname))
    put("dns_request", "response_dropped", pair(answer(1, "a.test", [])))
    put("dns_request", "two_questions", pair(struct.pack(">HHHHHH", 3, 0x0100, 2, 0, 0, 0) + dns_name("a.test") + b"\x00\x01\x00\x01" + dns_name("b.test") + b"\x00\x01\x00\x01"))
    put("dns_request", "chaos_class", pair(struct.pack(">HHHHHH", 4, 0x0100, 1, 0, 0, 0) + dns_name("version.bind") + b"\x00\x10\x00\x03"))


def config():
    sources = sorted((ROOT / "tests/fixtures/istio/good/v1").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
    sources += [ROOT / "tests/fixtures/istio/broken" / n for n in ("30-duplicate-key.yaml", "03-wrong-type-port.yaml", "45-percentage-out-of-range.yaml")]
    for f in sources:
        put("config_roundtrip", f"{f.parent.name}_{f.stem}", f.read_bytes())
    put("config_roundtrip", "flow_and_anchors", b"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: "a"}
spec:
  hosts: &h ['api.example.test']
  ports: [{number: 0x1bb, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: a}
spec: {egress: [{hosts: ["./*", "istio-system/*"]}], outboundTrafficPolicy: {mode: REGISTRY_ONLY}}
""")


if __name__ == "__main__":
    tls(); http1(); http1_response(); http2(); dns(); config()
