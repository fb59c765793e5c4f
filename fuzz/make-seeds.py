#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/: small, benign, valid inputs of
each format (synthetic hash values, generated test-pattern media), a few KB each. Re-running it
rewrites the text seeds identically; the media seeds are copied from the repository's fixtures.
The sandbox_wire seeds are the wire encoder's own output, written by a unit test:
`SAFEGUARD_WRITE_FUZZ_SEEDS=1 cargo test -p safeguard-sandbox --lib wire::tests::fuzz_seeds`."""
import hashlib
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")


def h(name, n):
    """A deterministic synthetic hex value of n digits (not a hash of anything real)."""
    out = ""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{name}-{i}".encode()).hexdigest()
        i += 1
    return out[:n]


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(target, paths):
    for p in paths:
        write(target, os.path.basename(p), open(os.path.join(ROOT, p), "rb").read())


md5, sha1, sha256, pdq = h("md5", 32), h("sha1", 40), h("sha256", 64), h("pdq", 64)
pdna = ",".join(str(int(h("pdna", 288)[i : i + 2], 16)) for i in range(0, 288, 2))

# Images: one of each format from the media crate's Pillow fixtures.
pillow = "crates/media/tests/data/pillow13"
copy("decode_hash", [f"{pillow}/{f}" for f in sorted(os.listdir(os.path.join(ROOT, pillow)))
                     if f.rsplit(".", 1)[-1] in ("jpg", "png", "gif", "webp", "bmp", "tif")
                     and os.path.getsize(os.path.join(ROOT, pillow, f)) <= 8192])

# Videos: the smallest synthetic clips of testdata/video (testsrc2 patterns).
copy("video_decode", ["testdata/video/tiny-4x4.mp4", "testdata/video/testsrc2-64x48-2s.webm",
                      "testdata/video/testsrc2-48x32-animated.gif",
                      "testdata/video/testsrc2-48x32-animated.webp"])

# Plain lists: first byte picks the declared type (0: none, 1: pdq, 2: md5, 3: sha256).
write("list_plain", "typed-lines", b"\x00# a comment\n\nmd5 " + md5.encode() + b"\nsha1 " + sha1.encode()
      + b"\npdq " + pdq.encode() + b"\n")
write("list_plain", "bare-md5", b"\x02" + md5.encode() + b"\n" + md5.upper().encode() + b"\r\n")
write("list_plain", "bare-pdq", b"\x01" + pdq.encode() + b"\n")
write("list_plain", "detected", b"\x00" + md5.encode() + b"\n" + sha1.encode() + b"\n")

# CSV: two option bytes (see list_csv.rs), then the list.
# 0x04: comma, header, columns found by name; 0x0c: hash by number (1) with a header.
write("list_csv", "header-names", b"\x04\x00signal_value,type,grade,id\n" + md5.encode()
      + b",md5,A1,e1\n" + pdq.encode() + b",pdq,B2,e2\n")
write("list_csv", "numbered-tsv", b"\x29\x00" + md5.encode() + b"\tmd5\n" + sha1.encode() + b"\tsha1\n")
write("list_csv", "typed-semicolon", b"\x0a\x80" + md5.encode() + b";x\n# comment\n")

# HMA: python-threatexchange's `dataset -P --csv`.
write("list_hma", "export.csv", "collab,signal_type,signal_str,category,tags\n"
      f"Sample Collab,pdq,{pdq},media_priority_samples,\n"
      f"Sample Collab,md5,{md5},,tag1 tag2\n")

# NCMEC hash-sharing v2 page.
write("list_ncmec", "page.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="2" maxTimestamp="2024-01-01T00:00:00Z">
    <image><member id="42">Example</member><timestamp>2024-01-01T00:00:00Z</timestamp><id>image1</id>
      <classification>A1</classification>
      <fingerprints><md5>{md5}</md5><sha1>{sha1}</sha1><pdna>{pdna}</pdna><pdq>{pdq}</pdq></fingerprints>
    </image>
    <deletedImage><member id="43">Example</member><id>image4</id><timestamp>2024-01-02T00:00:00Z</timestamp></deletedImage>
  </images>
  <videos count="1" maxTimestamp="2024-01-01T00:00:00Z">
    <video><id>video1</id><fingerprints><md5>{md5}</md5><tmk-pdqf rel="self" href="/v2/x"/></fingerprints></video>
  </videos>
  <paging><next>/v2/entries?from=1&amp;to=2</next></paging>
</queryResult>
""")

# StopNCII FetchHashes page, and a bare array.
write("list_stopncii", "page.json", f"""{{"count": 3, "nextPageToken": "t", "hasMoreRecords": false,
"nextSetTimestamp": 5, "hashRecords": [
 {{"lastModtimestamp": 1, "signalType": "ImagePDQ", "hashValue": "{pdq}", "hashStatus": "Active",
   "caseNumbers": {{"c1": "Active"}}, "CSPFeedbacks": []}},
 {{"lastModtimestamp": 2, "signalType": "VideoMD5", "hashValue": "{md5}", "hashStatus": "Withdrawn"}},
 {{"signalType": "Text", "hashValue": "hello"}}]}}""")
write("list_stopncii", "array.json", f'[{{"signalType": "ImagePDQ", "hashValue": "{pdq}"}}]')

# Peer answers the exchange clients read (exchange_pages): one byte picks the exchange (0 NCMEC,
# 1 StopNCII, 2 another Safeguard), then up to four page bodies separated by NUL bytes.
ncmec_page = open(os.path.join(SEEDS, "list_ncmec", "page.xml"), "rb").read()
ncmec_delete = f"""<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="1" maxTimestamp="2024-01-03T00:00:00Z">
    <deletedImage><member id="42">Example</member><id>image1</id><timestamp>2024-01-03T00:00:00Z</timestamp></deletedImage>
  </images>
</queryResult>""".encode()
write("exchange_pages", "ncmec-one-page", b"\x00" + ncmec_page)
write("exchange_pages", "ncmec-entry-then-deletion", b"\x00" + ncmec_page + b"\x00" + ncmec_delete)
stopncii_more = f"""{{"count": 2, "nextPageToken": "t1", "hasMoreRecords": true, "nextSetTimestamp": 5,
"hashRecords": [
 {{"lastModtimestamp": 1, "signalType": "ImagePDQ", "hashValue": "{pdq.upper()}", "hashStatus": "Active",
   "caseNumbers": {{"c1": "Active"}}, "CSPFeedbacks": [{{"source": "x", "feedbackValue": "Blocked", "tags": ["t"]}}]}},
 {{"lastModtimestamp": 2, "signalType": "VideoMD5", "hashValue": "{md5}", "hashStatus": "Active"}}]}}""".encode()
stopncii_last = f"""{{"count": 1, "hasMoreRecords": false, "nextSetTimestamp": 9,
"hashRecords": [{{"lastModtimestamp": 3, "signalType": "ImagePDQ", "hashValue": "{pdq}", "hashStatus": "Withdrawn"}}]}}""".encode()
write("exchange_pages", "stopncii-two-pages", b"\x01" + stopncii_more + b"\x00" + stopncii_last)
stopncii_one = f"""{{"count": 2, "hasMoreRecords": false, "nextSetTimestamp": 5, "hashRecords": [
 {{"lastModtimestamp": 1, "signalType": "ImagePDQ", "hashValue": "{pdq}", "hashStatus": "Active",
   "caseNumbers": {{"c1": "Active"}}, "CSPFeedbacks": []}},
 {{"lastModtimestamp": 2, "signalType": "VideoMD5", "hashValue": "{md5}", "hashStatus": "Deleted",
   "caseNumbers": {{}}}}]}}""".encode()
write("exchange_pages", "stopncii-one-page", b"\x01" + stopncii_one)
peer_first = f"""{{"contents": [{{"id": 3, "signals": {{"md5": "{md5}", "pdq": "{pdq}"}}, "note": "benign test"}},
 {{"id": 7, "signals": {{"sha256": "{sha256}"}}, "disable_until_ts": 0}}], "next_after": 7}}""".encode()
peer_last = f"""{{"contents": [{{"id": 9, "signals": {{"md5": "{h("md5b", 32)}", "unknown_type": "x"}}}}], "next_after": null}}""".encode()
write("exchange_pages", "peer-two-pages", b"\x02" + peer_first + b"\x00" + peer_last)
write("exchange_pages", "peer-empty", b'\x02{"contents": [], "next_after": null}')

# Server configuration (TOML), optionally NUL then NAME=value environment lines.
write("config_toml", "full.toml", """listen = "127.0.0.1:5000"
data_dir = "/var/lib/safeguard"
dev = false

[limits]
max_body_bytes = 33554432
request_timeout_secs = 30
max_concurrency = 64

[fetch]
enabled = true
allow_internal_hosts = ["media.internal"]
max_bytes = 16777216
timeout_secs = 10
max_redirects = 3

[log]
format = "json"
level = "info"

[[exchanges]]
name = "PEER"
kind = "peer"
url = "https://peer.example/"
""")
write("config_toml", "env-only", b"\x00SAFEGUARD_LISTEN=127.0.0.1:8080\nSAFEGUARD_DEV=true\n"
      b"SAFEGUARD_MAX_BODY_BYTES=1048576\nSAFEGUARD_LOG_FORMAT=text\n")
write("config_toml", "empty", b"")

# HMA routes: route byte, query (or path tail), NUL, body. Route numbers: see hma_http.rs.
B = "fuzzboundary"


def form(fields, file=None):
    out = b""
    for k, v in fields:
        out += f'--{B}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    if file:
        name, data = file
        out += (f'--{B}\r\nContent-Disposition: form-data; name="{name}"; filename="u.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{B}--\r\n".encode()


grey = open(os.path.join(ROOT, pillow, "grey.jpg"), "rb").read()
seeds = {
    "lookup-pdq": (0, f"signal_type=pdq&signal={pdq}", b""),
    "lookup-md5-banks": (0, f"signal_type=md5&signal={md5}&bypass_coinflip=true", b""),
    "raw-lookup": (1, f"signal_type=pdq&signal={pdq}&include_distance=true", b""),
    "lookup-upload": (2, "", form([], ("photo", grey))),
    "hash-upload": (3, "types=pdq,md5", form([], ("photo", grey))),
    "compare": (4, "", f'{{"pdq": ["{pdq}", "{h("pdq2", 64)}"]}}'.encode()),
    "bank-create": (5, "", b'{"name": "OTHER_BANK", "matching_enabled_ratio": 0.5}'),
    "bank-update": (6, "", b'{"enabled": true, "matching_enabled_ratio": 1.0}'),
    "content-add-form": (7, "", form([("metadata", '{"content_id": "a1"}')], ("photo", grey))),
    "signal-add": (8, "", f'{{"signal_type": "pdq", "signal": "{pdq}", "note": "n"}}'.encode()),
    "content-get": (9, "1?signals=true", b""),
    "content-put": (10, "1", b'{"disable_until_ts": 0}'),
    "index-status": (11, "signal_type=pdq", b""),
    "signal-type": (12, "pdq", b'{"enabled": true}'),
    "banks-get": (13, "c/banks", b""),
}
for name, (route, q, body) in seeds.items():
    write("hma_http", name, bytes([route]) + q.encode() + b"\x00" + body)
# URLs and message text (url_canonicalize): the Safe Browsing vectors' shapes on reserved
# names, every IP form, IDN, and defanged text. All benign.
url_seeds = {
    "plain": b"http://www.example.com/a/b/c.html?x=1#frag",
    "escapes": b"http://host.example/%25%32%35%2525252525%%%25%32%35asd%%/%2E%2e/%2Fx",
    "ip-forms": b"http://0xc0.0250.2.1:8080/x/../y",
    "decimal-ip": b"3221225985/blah",
    "ipv6": b"https://[2001:0db8:0000::1]:443//a//b/./c/",
    "ipv4-mapped": b"http://[::ffff:192.0.2.1]/",
    "idn": "http://B\u00fccher.Example\u3002test/~user/".encode(),
    "userinfo": b"http://user:pass@a@example.com.../q?r?s",
    "controls": b"  http://exa\tmple.com/foo\tbar\rbaz\n2 \x01\x80",
    "no-scheme": b"%20leadingspace.example/",
    "text-defanged": b"see hxxps://example[.]com/a and example dot org/b, or www.example . net",
    "text-fullwidth": "\uff48\uff54\uff54\uff50\uff1a\uff0f\uff0f\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d".encode(),
}
for name, data in url_seeds.items():
    write("url_canonicalize", name, data)
print("seeds written to", SEEDS)
