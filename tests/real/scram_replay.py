#!/usr/bin/env python3
"""A SCRAM-SHA-256 login done right, then its proof replayed on a new connection; or a
login that lets its session run out.

    scram_replay.py HOST:PORT USER PASSWORD
    scram_replay.py --outlive-session HOST:PORT USER PASSWORD

Speaks just enough Kafka over a plain socket (SaslHandshake v1, SaslAuthenticate v1) to
log in as USER, as any SCRAM client does (RFC 5802, computed here with hashlib), then opens
a second connection, sends the same client-first message (same client nonce) and, whatever
the server answers, the first login's client-final message with its proof: what an
attacker who recorded the first login would send. Prints one JSON line:
{"first_login_error_code": N, "replay_error_code": N or null, "replay_detail": "..."}
(null: the connection closed without an answer).

With --outlive-session it logs in, waits a second past the session lifetime the gateway
announced (KIP-368) without logging in again, then sends ApiVersions, and prints
{"session_lifetime_ms": N, "after_the_session": "answered" or "closed"}.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time

SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18


class Conn:
    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.correlation = 0

    def request(self, api_key, version, body):
        self.correlation += 1
        client_id = b"scram-replay"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client_id)) + client_id
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self.read(4))[0]
        answer = self.read(size)
        if struct.unpack(">i", answer[:4])[0] != self.correlation:
            raise SystemExit("answer to another request")
        return answer[4:]

    def read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return out

    def handshake(self):
        mechanism = b"SCRAM-SHA-256"
        error = struct.unpack(">h", self.request(SASL_HANDSHAKE, 1, struct.pack(">h", len(mechanism)) + mechanism)[:2])
        if error[0] != 0:
            raise SystemExit("SaslHandshake error %d" % error[0])

    def authenticate(self, message):
        """(error code, server message, session lifetime in ms) of one SaslAuthenticate v1."""
        body = self.request(SASL_AUTHENTICATE, 1, struct.pack(">i", len(message)) + message)
        error, msg_len = struct.unpack(">hh", body[:4])
        at = 4 + max(msg_len, 0)
        size = max(struct.unpack(">i", body[at:at + 4])[0], 0)
        answer = body[at + 4:at + 4 + size]
        at += 4 + size
        lifetime = struct.unpack(">q", body[at:at + 8])[0] if len(body) >= at + 8 else 0
        return error, answer, lifetime


def attributes(message):
    return dict(part.split("=", 1) for part in message.decode().split(","))


def client_final(password, client_first_bare, server_first):
    attrs = attributes(server_first)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = b"c=biws,r=" + attrs["r"].encode()
    auth_message = client_first_bare + b"," + server_first + b"," + without_proof
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return without_proof + b",p=" + base64.b64encode(proof)


def log_in(address, user, password):
    """A SCRAM-SHA-256 login done right: (connection, client-first-bare, server-first,
    client-final, error code of the final step, session lifetime in ms)."""
    bare = ("n=%s,r=%s" % (user, base64.b64encode(os.urandom(18)).decode())).encode()
    conn = Conn(address)
    conn.handshake()
    error, server_first, _ = conn.authenticate(b"n,," + bare)
    if error:
        raise SystemExit("client-first refused: %d" % error)
    final = client_final(password, bare, server_first)
    error, _, lifetime = conn.authenticate(final)
    return conn, bare, server_first, final, error, lifetime


def outlive_session(address, user, password):
    conn, _, _, _, error, lifetime = log_in(address, user, password)
    if error:
        raise SystemExit("login refused: %d" % error)
    time.sleep(lifetime / 1000 + 1)
    try:
        conn.request(API_VERSIONS, 0, b"")
        after = "answered"
    except (ConnectionError, OSError):
        after = "closed"
    print(json.dumps({"session_lifetime_ms": lifetime, "after_the_session": after}))


def replay(address, user, password):
    # The first connection stays open: the replay runs beside the session it copies.
    first, bare, server_first, recorded, first_error, _ = log_in(address, user, password)
    conn = Conn(address)
    conn.handshake()
    replay_error, detail = None, ""
    try:
        error, server_first2, _ = conn.authenticate(b"n,," + bare)
        detail = "server-first %s the first login's" % ("equals" if server_first2 == server_first else "differs from")
        replay_error = conn.authenticate(recorded)[0] if error == 0 else error
    except ConnectionError as exc:
        detail += "; %s" % exc
    print(json.dumps({"first_login_error_code": first_error, "replay_error_code": replay_error,
                      "replay_detail": detail}))  # fmt: skip
    first.sock.close()


def main():
    if sys.argv[1] == "--outlive-session":
        outlive_session(*sys.argv[2:5])
    else:
        replay(*sys.argv[1:4])


if __name__ == "__main__":
    main()
