#!/usr/bin/python3
"""RFC 6455 and RFC 7692 conformance of rtpush's WebSocket session, against
examples/echo_server (server_config::echo: the library's own reader, limits and
permessage-deflate, echoing every message). The client is independent: hand-built frames on a
raw socket (masking, fragments, reserved bits and opcodes, bad UTF-8 split across fragments,
close codes), plus Python `websockets` for a library's view. Each case states the RFC section
it checks; exact close codes are checked (1002 protocol error, 1007 invalid data, 1009 too
big), and that the server then closes the TCP connection.
Usage: conformance.py PATH_TO_ECHO_SERVER
"""
import asyncio
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
import zlib

import websockets

from rtdtest import RawClient, check, client_frame, failures, start_rtd

ECHO = sys.argv[1]
LIMIT = 65536  # --max-message-size
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
NEGOTIATED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
PORT = 0


def connect(path="/", offer=None, **kw):
    return RawClient(PORT, path=path, offer=offer, timeout=5, **kw)


def next_frame(c):
    """The next frame (fin, rsv1, op, payload), or None when the server closed TCP."""
    try:
        return c.frame()
    except (EOFError, ConnectionResetError, socket.timeout):
        return None


def inflate(payload):
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def message(c):
    """The next data message (op, payload), fragments gathered and inflated; pongs skipped.
    A close frame gives ("close", code); the end of the connection (None, None)."""
    op, parts, compressed = None, [], False
    while True:
        f = next_frame(c)
        if f is None:
            return None, None
        fin, rsv1, fop, payload = f
        if fop == PONG or fop == PING:
            continue
        if fop == CLOSE:
            return "close", struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        if fop != CONT:
            op, compressed = fop, rsv1
        parts.append(payload)
        if fin:
            data = b"".join(parts)
            return op, inflate(data) if compressed else data


def closed_with(c, code, what):
    """The server's next frame is a close with `code` (skipping pongs), then TCP ends."""
    while True:
        f = next_frame(c)
        if f is None or f[2] != PONG:
            break
    got = None
    if f is not None and f[2] == CLOSE:
        got = struct.unpack(">H", f[3][:2])[0] if len(f[3]) >= 2 else 1005
    end = next_frame(c) is None  # nothing more: the server closed the connection
    check(got == code and end, f"{what}: close {code} (got {got}, TCP closed: {end})")
    c.close()


def echoed(c, op, payload, what):
    got = message(c)
    check(got == (op, payload), f"{what} echoed" + ("" if got == (op, payload) else
                                                    f" (got {str(got)[:80]})"))


def quiet(c, seconds=0.3):
    """No frame arrives within `seconds`."""
    c.s.settimeout(seconds)
    try:
        c.s.recv(1)
        return False
    except socket.timeout:
        return True
    finally:
        c.s.settimeout(5)


def handshake():
    # RFC 6455 4.2.2: 101, Sec-WebSocket-Accept; any path; no greeting.
    for path in ("/", "/ws", "/some/path?x=1"):
        c = connect(path)
        accept = base64.b64encode(hashlib.sha1(
            (c.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        check(c.status == 101 and c.headers.get("sec-websocket-accept") == accept,
              f"4.2.2 upgrade on {path}: 101 with the right Sec-WebSocket-Accept")
        check("sec-websocket-extensions" not in c.headers, f"4.2.2 {path}: no extension unasked")
        if path == "/":
            check(quiet(c), "the echo sends nothing first (no greeting)")
        c.send(CLOSE, struct.pack(">H", 1000))
        closed_with(c, 1000, f"7.1.2 close handshake on {path}")
    c = connect("/", version="8")
    check(c.status == 426 and c.headers.get("sec-websocket-version") == "13",
          "4.4 version 8: 426 with Sec-WebSocket-Version: 13")
    c.close()


def framing():
    # RFC 6455 5.2: payload lengths in 7, 16 and 64 bits; any binary; frames split in reads.
    c = connect()
    for n in (0, 1, 125, 126, 127, 65535, 65536):
        c.send(TEXT, b"*" * n)
        echoed(c, TEXT, b"*" * n, f"5.2 text of {n} bytes")
    everything = bytes(range(256)) * 4
    c.send(BINARY, everything)
    echoed(c, BINARY, everything, "5.6 binary with every byte value")
    frame = client_frame(TEXT, "split in 1-byte writes".encode())
    for i in range(len(frame)):
        c.s.sendall(frame[i:i + 1])
        time.sleep(0.001)
    echoed(c, TEXT, b"split in 1-byte writes", "5.2 a frame arriving byte by byte")
    c.s.sendall(b"".join(client_frame(TEXT, b"m%d" % i) for i in range(100)))
    got = [message(c) for _ in range(100)]
    check(got == [(TEXT, b"m%d" % i) for i in range(100)],
          "100 messages in one write echoed in order")
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "close after framing")
    c = connect()
    c.send(TEXT, b"not masked", mask=False)
    closed_with(c, 1002, "5.1 an unmasked client frame")
    c = connect()
    c.s.sendall(bytes([0x81, 0x80 | 127]) + struct.pack(">Q", 1 << 63) + os.urandom(4))
    closed_with(c, 1002, "5.2 a 64-bit length with its high bit set")


def pings():
    # RFC 6455 5.5.2, 5.5.3: a ping's pong carries its payload; unsolicited pongs are ignored.
    c = connect()
    for payload in (b"", b"hello", bytes(range(125))):
        c.send(PING, payload)
        f = next_frame(c)
        check(f is not None and f[2] == PONG and f[3] == payload and f[0],
              f"5.5.2 ping of {len(payload)} bytes: pong with its payload")
    c.send(PONG, b"unsolicited")
    c.send(TEXT, b"after a pong")
    echoed(c, TEXT, b"after a pong", "5.5.3 an unsolicited pong is ignored")
    c.s.sendall(b"".join(client_frame(PING, b"p%d" % i) for i in range(10)))
    pongs = [next_frame(c) for _ in range(10)]
    check([f[3] for f in pongs if f] == [b"p%d" % i for i in range(10)],
          "5.5.3 ten pings, ten pongs in order")
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "close after pings")
    c = connect()
    c.send(PING, b"x" * 126)
    closed_with(c, 1002, "5.5 a ping of 126 bytes")
    c = connect()
    c.send(PING, b"fragmented", fin=False)
    closed_with(c, 1002, "5.5 a fragmented ping")


def reserved():
    # RFC 6455 5.2: RSV bits without an extension, reserved opcodes: fail with 1002.
    for rsv, name in ((RSV1, "RSV1"), (RSV2, "RSV2"), (RSV3, "RSV3"),
                      (RSV1 | RSV2 | RSV3, "all RSV")):
        c = connect()
        c.send(TEXT, b"ok")
        echoed(c, TEXT, b"ok", f"a message before {name}")
        c.send(TEXT, b"reserved", rsv=rsv)
        closed_with(c, 1002, f"5.2 {name} on a text frame without an extension")
    c = connect()
    c.send(PING, b"", rsv=RSV2)
    closed_with(c, 1002, "5.2 RSV2 on a ping")
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        c = connect()
        c.send(op, b"")
        closed_with(c, 1002, f"5.2 reserved opcode {op:#x}")


def fragmentation():
    # RFC 6455 5.4: fragments, control frames between them, misplaced continuations.
    c = connect()
    c.send(TEXT, b"frag", fin=False)
    c.send(CONT, b"men", fin=False)
    c.send(CONT, b"ted")
    echoed(c, TEXT, b"fragmented", "5.4 a text message in three fragments")
    c.send(BINARY, b"\x00\xff", fin=False)
    c.send(PING, b"between")
    c.send(CONT, b"", fin=False)
    c.send(PONG, b"between too")
    c.send(CONT, b"\x01")
    f = next_frame(c)
    check(f is not None and f[2] == PONG and f[3] == b"between",
          "5.4 a ping between fragments is answered at once")
    echoed(c, BINARY, b"\x00\xff\x01", "5.4 binary fragments around a ping, a pong, an empty one")
    for i, ch in enumerate(b"one byte each"):
        last = i == len(b"one byte each") - 1
        c.send(TEXT if i == 0 else CONT, bytes([ch]), fin=last)
    echoed(c, TEXT, b"one byte each", "5.4 a message of one-byte fragments")
    c.send(TEXT, b"", fin=False)
    c.send(CONT, b"")
    echoed(c, TEXT, b"", "5.4 a message of empty fragments")
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "close after fragments")
    c = connect()
    c.send(CONT, b"orphan")
    closed_with(c, 1002, "5.4 a continuation with no message started")
    c = connect()
    c.send(TEXT, b"first", fin=False)
    c.send(TEXT, b"second")
    closed_with(c, 1002, "5.4 a new text frame inside a fragmented message")
    c = connect()
    c.send(TEXT, b"unfinished", fin=False)
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "7.1 a close in the middle of a fragmented message")


def utf8():
    # RFC 6455 5.6, 8.1: text is UTF-8; invalid text fails with 1007, inside a fragmented
    # message as soon as the bad fragment arrives (fail fast), not at the message's end.
    c = connect()
    for s in ("κόσμε", "€ and 😀", "\u0000", "\U0010ffff"):
        c.send(TEXT, s.encode())
        echoed(c, TEXT, s.encode(), f"5.6 valid text {s!r}")
    emoji = "😀".encode()
    c.send(TEXT, b"a" + emoji[:1], fin=False)
    c.send(CONT, emoji[1:3], fin=False)
    c.send(CONT, emoji[3:] + b"b")
    echoed(c, TEXT, b"a" + emoji + b"b", "8.1 a character split over three fragments")
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "close after valid text")
    for bad, name in ((b"\xff", "byte FF"), (b"\xc0\xaf", "overlong '/'"),
                      (b"\xed\xa0\x80", "a surrogate"), (b"\xf4\x90\x80\x80", "above U+10FFFF"),
                      (b"ok\xe2\x82", "a character cut at the end")):
        c = connect()
        c.send(TEXT, bad)
        closed_with(c, 1007, f"8.1 {name} in a text message")
    # Fail fast: the rest of the message is never sent; the close must come anyway.
    for first, then, name in ((b"\xce\xba\xf4", b"\x90", "F4 | 90 (above U+10FFFF) split"),
                              (b"ok", b"\xff", "FF in the second fragment"),
                              (b"\xed", b"\xa0", "a surrogate split after its lead byte"),
                              (b"\xff", None, "FF in the first fragment")):
        c = connect()
        c.send(TEXT, first, fin=False)
        if then is not None:
            c.send(CONT, then, fin=False)
        closed_with(c, 1007, f"8.1 fail fast: {name}, message not finished")
    c = connect()
    c.send(TEXT, b"a\xf0\x9f", fin=False)
    c.send(CONT, b"\x98")
    closed_with(c, 1007, "8.1 a character left unfinished by the last fragment")
    c = connect()
    c.send(BINARY, b"\xff\xfe")
    echoed(c, BINARY, b"\xff\xfe", "5.6 binary is not UTF-8 checked")
    c.close()


def closing():
    # RFC 6455 5.5.1, 7.4: close codes and reasons.
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        c = connect()
        c.send(CLOSE, struct.pack(">H", code) + b"reason")
        closed_with(c, code, f"7.4 valid close code {code} echoed")
    for code in (0, 999, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        c = connect()
        c.send(CLOSE, struct.pack(">H", code))
        closed_with(c, 1002, f"7.4 invalid close code {code}")
    c = connect()
    c.send(CLOSE, b"")
    closed_with(c, 1000, "5.5.1 an empty close")
    c = connect()
    c.send(CLOSE, b"\x03")
    closed_with(c, 1002, "5.5.1 a close payload of one byte")
    c = connect()
    c.send(CLOSE, struct.pack(">H", 1000) + "é".encode() * 61 + b"x")
    closed_with(c, 1000, "5.5.1 a close reason of 123 bytes of UTF-8")
    c = connect()
    c.send(CLOSE, struct.pack(">H", 1000) + b"x" * 124)
    closed_with(c, 1002, "5.5 a close payload of 126 bytes")
    c = connect()
    c.send(CLOSE, struct.pack(">H", 1000) + b"\xce\xba\xff")
    closed_with(c, 1007, "5.5.1 a close reason that is not UTF-8")
    c = connect()
    c.s.sendall(client_frame(CLOSE, struct.pack(">H", 1000)) + client_frame(TEXT, b"late") +
                client_frame(PING, b"late"))
    closed_with(c, 1000, "5.5.1 data and pings after the close frame are not answered")


def limits():
    # RFC 6455 7.4.1: 1009 for a message too big to process (here, over --max-message-size).
    c = connect()
    c.send(BINARY, b"b" * LIMIT)
    echoed(c, BINARY, b"b" * LIMIT, "a message at the limit")
    c.send(TEXT, b"t" * (LIMIT + 1))
    closed_with(c, 1009, "7.4.1 a message one byte over the limit")
    c = connect()
    c.s.sendall(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 1 << 40) + os.urandom(4))
    closed_with(c, 1009, "7.4.1 a 1 TiB frame refused from its header")
    c = connect()
    for _ in range(4):
        c.send(BINARY if _ == 0 else CONT, b"f" * (LIMIT // 4), fin=False)
    c.send(CONT, b"f")
    closed_with(c, 1009, "7.4.1 fragments passing the limit")


def deflate_frames(payload, pieces=1, final_block=False):
    z = zlib.compressobj(wbits=-15)
    data = z.compress(payload) + z.flush(zlib.Z_FINISH if final_block else zlib.Z_SYNC_FLUSH)
    if not final_block:
        assert data.endswith(b"\x00\x00\xff\xff")
        data = data[:-4]
    step = max(1, -(-len(data) // pieces))
    return [data[i:i + step] for i in range(0, len(data), step)] or [b""]


def permessage_deflate():
    # RFC 7692: negotiation, compressed messages (fragmented too), no context takeover.
    offer = "permessage-deflate; client_max_window_bits"
    c = connect(offer=offer)
    check(c.headers.get("sec-websocket-extensions") == NEGOTIATED,
          "7692 5: the offer is accepted with no context takeover both ways")
    text = ("compressible " * 200).encode()
    for op, payload in ((TEXT, text), (BINARY, bytes(range(256)) * 8)):
        (data,) = deflate_frames(payload)
        c.send(op, data, rsv=RSV1)
        kind = "text" if op == TEXT else "binary"
        echoed(c, op, payload, f"7692 7.2 a compressed {kind} message")
    pieces = deflate_frames(text, pieces=3)
    c.send(TEXT, pieces[0], rsv=RSV1, fin=False)
    c.send(PING, b"in between")
    c.send(CONT, pieces[1], fin=False)
    c.send(CONT, pieces[2])
    echoed(c, TEXT, text, "7692 6.1 a compressed message in three fragments, a ping between")
    (data,) = deflate_frames(text, final_block=True)
    c.send(TEXT, data, rsv=RSV1)
    echoed(c, TEXT, text, "7692 7.2.3.4 a message ending in a final DEFLATE block")
    c.send(TEXT, b"plain on a deflate connection")
    echoed(c, TEXT, b"plain on a deflate connection",
           "7692 6 an uncompressed message (RSV1 clear)")
    # No context takeover: each echo inflates on its own (message() uses a fresh inflater);
    # the client compressed each message on its own too.
    for i in range(3):
        (data,) = deflate_frames(text)
        c.s.sendall(client_frame(TEXT, data, rsv=RSV1))
    raw = [next_frame(c) for _ in range(3)]
    check(all(f and f[1] and inflate(f[3]) == text for f in raw),
          "7692 7.1.1 server_no_context_takeover: three equal echoes, each compressed alone")
    check(len({f[3] for f in raw if f}) == 1, "7692 7.1.1 ... and byte for byte the same")
    c.send(CLOSE, struct.pack(">H", 1000))
    closed_with(c, 1000, "close after compressed messages")

    pmd = "permessage-deflate; "
    for bad_offer, why in ((pmd + "server_max_window_bits=10", "a smaller server window"),
                           (pmd + "unknown_param", "an unknown parameter"),
                           (pmd + "client_no_context_takeover; client_no_context_takeover",
                            "a repeated parameter"),
                           (pmd + "client_max_window_bits=16", "a window of 16 bits"),
                           (pmd + "server_no_context_takeover=1", "a value where none belongs")):
        c = connect(offer=bad_offer)
        check(c.status == 101 and "sec-websocket-extensions" not in c.headers,
              f"7692 5.1 an offer with {why} is declined, the connection still opens")
        c.send(TEXT, b"x", rsv=RSV1)
        closed_with(c, 1002, f"7692 6 RSV1 after declining the offer with {why}")
    c = connect(offer="permessage-deflate; server_max_window_bits=9, permessage-deflate")
    check(c.headers.get("sec-websocket-extensions") == NEGOTIATED,
          "7692 5 the second offer is taken when the first is declined")
    c.close()
    c = connect(offer="permessage-deflate; client_max_window_bits=10; server_no_context_takeover")
    check(c.headers.get("sec-websocket-extensions") == NEGOTIATED,
          "7692 7.1 client_max_window_bits=10 and server_no_context_takeover accepted")
    c.close()

    c = connect(offer=offer)
    pieces = deflate_frames(text, pieces=2)
    c.send(TEXT, pieces[0], rsv=RSV1, fin=False)
    c.send(CONT, pieces[1], rsv=RSV1)
    closed_with(c, 1002, "7692 6.1 RSV1 on a continuation frame")
    c = connect(offer=offer)
    c.send(PING, b"", rsv=RSV1)
    closed_with(c, 1002, "7692 6.1 RSV1 on a control frame")
    c = connect(offer=offer)
    c.send(TEXT, b"\xff\xff\xff\xff garbage", rsv=RSV1)
    closed_with(c, 1007, "7692 corrupt compressed data")
    c = connect(offer=offer)
    (data,) = deflate_frames(b"\xce\xba\xff")
    c.send(TEXT, data, rsv=RSV1)
    closed_with(c, 1007, "7692 8.1 compressed text that is not UTF-8 once inflated")
    c = connect(offer=offer)
    (data,) = deflate_frames(b"z" * (LIMIT + 1))
    c.send(BINARY, data, rsv=RSV1)
    closed_with(c, 1009, "7692 a message over the limit once inflated (a small bomb)")


async def python_websockets():
    # An independent library: Python websockets, with and without its default compression.
    for compression in ("deflate", None):
        async with websockets.connect(f"ws://127.0.0.1:{PORT}/any", compression=compression,
                                      max_size=None) as ws:
            ok = True
            for payload in ("short", "long " * 3000, b"\x00" * 60000, "ünïcödé"):
                await ws.send(payload)
                ok = ok and await asyncio.wait_for(ws.recv(), 5) == payload
            await asyncio.wait_for(await ws.ping(b"are you there"), 5)
            check(ok, f"websockets ({compression or 'no compression'}): text and binary "
                      "echoed, ping answered")
        check(ws.close_code == 1000, f"websockets ({compression}): closed with 1000")


def main():
    global PORT
    proc, PORT = start_rtd(ECHO, "--max-message-size", str(LIMIT))
    try:
        for case in (handshake, framing, pings, reserved, fragmentation, utf8, closing, limits,
                     permessage_deflate):
            try:
                case()
            except Exception as e:  # a case that breaks is a failure, the others still run
                check(False, f"{case.__name__} raised {type(e).__name__}: {e}")
        asyncio.run(python_websockets())
        check(proc.poll() is None, "the echo server is still up")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"{len(failures)} failure(s)" if failures else "all passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
