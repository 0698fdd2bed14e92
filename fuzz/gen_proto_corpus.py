#!/usr/bin/env python3
"""Writes fuzz/corpus-proto/, the seeds of fuzz/proto_fuzz.c:
    python3 fuzz/gen_proto_corpus.py
Frames and bundles as engine/proto.c builds them (proto.h), and broken ones.
The first byte of each seed is the target's mode: 0 a frame (then its type),
1 a bundle, 2 a stream ending cleanly, 5 a stream ending in a read error.
"""
import os
import struct

PF = dict(MAGIC=1, VERSION=2, MIN=3, PUNIX=4, ARCH=5, PATH=6, BITS=7, REG=8, KIND=9, REL=10, SIZE=11,
          LINK=12, BYTES=13, ARG=14, BUNDLE=15, CODE=16, TEXT=17, COUNT=18, STORE=19, ROOT=20)
B = dict(STACK=1, REQUEST=2, DEPLOYED_AT=3, SOURCE_HASH=4, SERVICES=5, STORE_PATH=6, FILE=7)
BF = dict(PATH=1, MODE=2, SECRET=3, OWNER=4, CONTENT=5)

STORE = "/s/store/"
HELLO_PATH = STORE + "0123456789abcdfghijklmnpqrsvwxyz-hello-1.0"
LIB_PATH = STORE + "zyxwvsrqpnmlkjihgfdcba9876543210-libc-2.39"


def field(tag, v):
    if isinstance(v, str):
        v = v.encode()
    elif isinstance(v, int):
        v = struct.pack("<Q", v)
    return struct.pack("<BI", tag, len(v)) + v


def fields(pairs, names):
    return b"".join(field(names[k], v) for k, v in pairs)


def frame(t, pairs):
    payload = fields(pairs, PF)
    return t.encode() + struct.pack("<I", len(payload)) + payload


def bundle(pairs, version=1):
    return b"PBN" + bytes([version]) + fields(pairs, B)


def bfile(path, mode, content, secret=0, owner=None):
    pairs = [("PATH", path), ("MODE", mode), ("SECRET", secret)]
    if owner is not None:
        pairs.append(("OWNER", owner))
    pairs.append(("CONTENT", content))
    return fields(pairs, BF)


HEAD = [("STACK", "web"), ("REQUEST", "web1:42:9f3a"), ("DEPLOYED_AT", "2026-12-03T10:00:00Z"),
        ("SOURCE_HASH", "ab" * 32), ("SERVICES", '{"nginx":{"exec":"/bin/nginx"}}')]
BUNDLE = bundle(HEAD + [("STORE_PATH", HELLO_PATH), ("STORE_PATH", LIB_PATH),
                        ("FILE", bfile("/etc/hello.conf", 0o644, "greeting = hi\n")),
                        ("FILE", bfile("/etc/hello.key", 0o600, b"k\x00e\xffy", secret=1, owner="hello"))])
HELLO_TARGET = frame("H", [("MAGIC", "punix-host"), ("VERSION", 1), ("MIN", 1), ("PUNIX", "0.1.0"),
                           ("ARCH", "x86_64")])
HELLO_DEPLOYER = frame("H", [("MAGIC", "punix-host"), ("VERSION", 1), ("MIN", 1), ("PUNIX", "0.1.0"),
                             ("STORE", "/s/store"), ("ROOT", "/")])
REG = '{"format":1,"nar_sha256":"' + "0" * 64 + '","nar_bytes":120,"references":[]}'
PUSH = (frame("P", [("PATH", HELLO_PATH), ("REG", REG)])
        + frame("N", [("KIND", "d"), ("REL", "")])
        + frame("N", [("KIND", "x"), ("REL", "bin/hello"), ("SIZE", 11)])
        + frame("D", [("BYTES", "#!/bin/sh\n")]) + frame("D", [("BYTES", "\n")])
        + frame("N", [("KIND", "l"), ("REL", "bin/hi"), ("LINK", "hello")])
        + frame("S", []))
RUN = frame("R", [("ARG", "host"), ("ARG", "deploy"), ("ARG", "--stack=web"), ("BUNDLE", BUNDLE)])


def one(f):
    """A frame as mode 0 takes it: its type, then its payload."""
    return b"\x00" + f[:1] + f[5:]


seeds = {
    # mode 0: one frame
    "frame-hello": one(HELLO_DEPLOYER),
    "frame-have-paths": one(frame("Q", [("PATH", HELLO_PATH), ("PATH", LIB_PATH)])),
    "frame-run-bundle": one(RUN),
    "frame-fail": one(frame("F", [("TEXT", "protocol version 7 is not one this punix speaks (1..1)")])),
    "broken-frame-unknown-type": b"\x00Z" + field(PF["TEXT"], "what"),
    "broken-frame-number-7-bytes": b"\x00X" + struct.pack("<BI", PF["CODE"], 7) + b"\x00" * 7,
    "broken-frame-field-cut-short": one(frame("F", [("TEXT", "cut")]))[:-2],
    "broken-frame-twice": one(frame("P", [("PATH", HELLO_PATH), ("PATH", LIB_PATH), ("REG", "{}")])),
    # mode 1: a bundle
    "bundle-files": b"\x01" + BUNDLE,
    "broken-bundle-dotdot": b"\x01" + bundle(HEAD + [("FILE", bfile("/etc/../shadow", 0o600, "x"))]),
    "broken-bundle-missing-services": b"\x01" + bundle(HEAD[:4]),
    # mode 2: a stream (5: ending in a read error)
    "stream-session": b"\x02" + HELLO_TARGET + frame("Q", [("PATH", HELLO_PATH)])
    + frame("Q", [("BITS", b"\x00")]) + PUSH + frame("S", [("COUNT", 1)]) + RUN
    + frame("O", [("BYTES", "activated\n")]) + frame("E", [("BYTES", "warning\n")]) + frame("X", [("CODE", 0)]),
    "stream-push-read-error": b"\x05" + PUSH,
    "broken-stream-truncated-frame": b"\x02" + HELLO_TARGET + RUN[:40],
    "broken-stream-shell-noise": b"\x02bash: line 1: punix: command not found\n",
    "broken-stream-frame-too-big": b"\x02D" + struct.pack("<I", (16 << 20) + 1) + b"\x0d",
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-proto")
os.makedirs(out, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
