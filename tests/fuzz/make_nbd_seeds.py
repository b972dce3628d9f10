#!/usr/bin/env python3
"""Writes the NBD seed corpus (corpus/nbd_handshake, nbd_request, nbd_server).

Run from anywhere; the files are committed, this script says how they were
made. Layouts are in fuzz_nbd_handshake.cpp and fuzz_nbd_request.cpp.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
SIZE = 1 << 30
TX = 0x016D  # kTransmissionFlags


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def opt(option, data=b""):
    return struct.pack(">QII", IHAVEOPT, option, len(data)) + data


def info_data(name=b"", infos=()):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def hs(client_flags, *options):
    return struct.pack(">QHI", SIZE, TX, client_flags) + b"".join(options)


write("nbd_handshake", "export-name", hs(1, opt(1, b"")))
write("nbd_handshake", "export-name-no-zeroes", hs(3, opt(1, b"swap")))
write("nbd_handshake", "go", hs(3, opt(7, info_data(b"", (3,)))))
write("nbd_handshake", "list-info-go", hs(3, opt(3), opt(6, info_data(b"x", (0, 1, 2, 3))), opt(7, info_data())))
write("nbd_handshake", "structured-starttls-abort", hs(1, opt(8), opt(5), opt(0x1234), opt(2)))
write("nbd_handshake", "list-with-data", hs(1, opt(3, b"junk"), opt(7, info_data(b"a" * 40))))
write("nbd_handshake", "bad-info-length", hs(1, opt(6, struct.pack(">I", 0xFFFFFFFF) + b"\0\0"), opt(7, info_data(b"", (1,)) + b"\0")))
write("nbd_handshake", "oversized-option", hs(1, struct.pack(">QII", IHAVEOPT, 7, 4096 + 9)))
write("nbd_handshake", "no-fixed-newstyle", hs(0, opt(1)))


def req(flags, typ, cookie, offset, length, export=SIZE):
    return struct.pack(">IHHQQIQ", REQ_MAGIC, flags, typ, cookie, offset, length, export)


write("nbd_request", "read-write", req(0, 0, 1, 0, 4096) + req(1, 1, 2, 4096, 65536))
write("nbd_request", "flush-trim-zeroes-disc",
      req(0, 3, 3, 0, 0) + req(0, 4, 4, 0, 64 << 20) + req(2, 6, 5, 8192, 4096) + req(0, 2, 6, 0, 0))
write("nbd_request", "edges",
      req(0, 0, 7, SIZE - 4096, 4096) + req(0, 1, 8, SIZE, 512) + req(0, 0, 9, 0xFFFFFFFFFFFFFE00, 1024)
      + req(0, 0, 10, 0, 0) + req(0, 1, 11, 0, (32 << 20) + 512) + req(0, 0, 12, 1, 512)
      + req(4, 0, 13, 0, 512) + req(0, 9, 14, 0, 512))


# corpus/nbd_server: what a client sends after connecting (fuzz_nbd_server.cpp).
def wire(flags, typ, cookie, offset, length, payload=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, flags, typ, cookie, offset, length) + payload


FLAGS = struct.pack(">I", 3)  # fixed newstyle, no zeroes
GO = opt(7, info_data())
write("nbd_server", "go-write-read-flush-disc",
      FLAGS + GO + wire(0, 1, 1, 0, 4096, b"\xab" * 4096) + wire(0, 0, 2, 0, 4096) + wire(0, 3, 3, 0, 0)
      + wire(0, 2, 4, 0, 0))
write("nbd_server", "go-overlap-fua-zero-trim",
      FLAGS + GO + wire(0, 1, 1, 0, 8192, b"\x11" * 8192) + wire(1, 1, 2, 4096, 4096, b"\x22" * 4096)
      + wire(0, 0, 3, 0, 16384) + wire(0, 6, 4, 512, 1024) + wire(0, 4, 5, 8192, 4096) + wire(0, 0, 6, 0, 8192))
write("nbd_server", "go-large-write-read",
      FLAGS + GO + wire(0, 1, 1, 65536, 131072, bytes(range(256)) * 512) + wire(0, 0, 2, 65536, 131072))
write("nbd_server", "export-name", struct.pack(">I", 1) + opt(1) + wire(0, 0, 1, 0, 512))
write("nbd_server", "list-info-abort", FLAGS + opt(3) + opt(6, info_data(b"", (3,))) + opt(2))
write("nbd_server", "go-bad-requests",
      FLAGS + GO + wire(0, 0, 1, 4 << 20, 512) + wire(0, 1, 2, 1, 512, b"\0" * 512) + wire(0, 9, 3, 0, 0)
      + wire(8, 0, 4, 0, 512))
write("nbd_server", "go-cut-payload", FLAGS + GO + wire(0, 1, 1, 0, 65536, b"\x33" * 1000))
