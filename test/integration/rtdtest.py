"""Shared pieces of the Python end-to-end tests: checks that print ok/FAIL lines, and rtd
started on a free loopback port (read from its JSON "listening" log line), a throwaway PKI."""
import base64
import collections
import json
import os
import socket
import struct
import subprocess
import threading

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class FrameReader:
    """Reads server frames from the plain socket `self.s`, past the HTTP head (`self.buf`
    holds what was read beyond it). For raw-socket clients that check bytes on the wire."""

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def frame(self):
        """(fin, rsv1, opcode, payload) of the next frame; EOFError at the end."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise RuntimeError("a masked server frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload


def client_frame(op, payload, fin=True, rsv=0, mask=True):
    """A client-to-server frame: `op`, FIN unless fin=False, the RSV bits `rsv` (0x40 RSV1,
    0x20 RSV2, 0x10 RSV3), masked with a random key unless mask=False."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | op])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient(FrameReader):
    """A WebSocket client on a plain socket: exact control over the bytes sent and the frames
    read. `status` and `headers` (lower-case names) are the server's answer to the upgrade."""

    def __init__(self, port, path="/ws", offer=None, version="13", timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
               f"Sec-WebSocket-Version: {version}\r\n")
        if offer:
            req += f"Sec-WebSocket-Extensions: {offer}\r\n"
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def send(self, op, payload, **kw):
        self.s.sendall(client_frame(op, payload, **kw))

    def close(self):
        self.s.close()


def hs256_token(secret, claims):
    """A JWT signed with HS256, as rtd's --jwt-secret verifies it."""
    import hashlib
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def start_rtd(rtd, *args, port=0):
    """Starts rtd with `args`; returns (process, port). Its log keeps being drained so that a
    chatty rtd never blocks on a full pipe."""
    proc = subprocess.Popen([rtd, "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "listening":
            proc.log = collections.deque(maxlen=200)  # its latest lines, for checks on them
            threading.Thread(target=lambda: [proc.log.append(l) for l in proc.stdout],
                             daemon=True).start()
            return proc, ev["port"]
    raise RuntimeError("rtd did not start")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(d):
    """In directory d, made with the openssl command: a CA (ca.pem/ca.key), a server
    certificate for localhost/127.0.0.1 signed by it (server.pem/server.key), one for another
    name (elsewhere.pem), a client certificate (client.pem/client.key) and an unrelated CA
    (other.pem)."""
    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
                "-out", ca + ".pem", "-days", "2", "-subj", "/CN=rtpush test " + ca, cwd=d)
    for name, cn in (("server", "localhost"), ("client", "rtpush test client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    # Signed by the right CA, for another name: host name verification must refuse it.
    with open(os.path.join(d, "ext2.cnf"), "w") as f:
        f.write("subjectAltName=DNS:elsewhere.test\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "elsewhere.pem", "-days", "2", "-extfile", "ext2.cnf",
            cwd=d)
    with open(os.path.join(d, "ext3.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "ext3.cnf", cwd=d)
