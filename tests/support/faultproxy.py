#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a registry, for tests. It listens
on 127.0.0.1 only and forwards to an upstream on 127.0.0.1, injecting one kind
of fault, the first COUNT times it applies (default: always):

  none            pass everything through
  blob-corrupt    flip one byte of every blob body (same length)
  blob-truncate   send half of a blob body, then close the connection (FIN)
  blob-reset      send half of a blob body, then reset the connection (RST:
                  SO_LINGER 0)
  reset           reset the connection (RST) without answering
  drop            close the connection (FIN) without answering
  http500         answer 500 Internal Server Error
  http5xx         answer --status (500..599, default 503)
  http429         answer 429 Too Many Requests with "Retry-After: SECONDS"
                  (--retry-after, default 1)
  delay           wait --delay SECONDS (default 2) before answering, then pass
                  the request through
  drip            send a blob body at --rate bytes per second, in small chunks
                  with pauses; a body is never dripped for more than
                  --drip-max seconds (default 30): the rest then goes at once.
                  --rate 0 stalls for --drip-max seconds after the headers
  auth-loop       answer every /v2/ request 401 with a Bearer challenge whose
                  token service hands out tokens that are never accepted
  token-5xx       ask for a Bearer token (401 and a challenge, until a request
                  carries the token); the token service answers --status
                  (default 503) while the fault fires, then hands out the token
  bad-manifest    serve a manifest that is not valid JSON

--retry-after SECONDS also adds a Retry-After header to http500/http5xx
answers; with --retry-after-date the header is the HTTP-date SECONDS from now
instead (whole seconds: the wait it asks for is SECONDS-1 to SECONDS). The faults of http500, http5xx, http429, reset, drop and delay apply
to any request (the first is usually the manifest); the blob-* ones and drip
to blob bodies only.

The request log goes to stderr, one line per event, each starting with
"faultproxy: t=EPOCH_SECONDS": "t=... GET PATH" as a request arrives,
"t=... fault MODE GET PATH" as a fault fires on it, and "t=... "REQUEST" STATUS -"
as an answer starts, so a test can measure the time between a 429 and the
retry.

It prints "ready PORT" on stdout once listening, and stops after --lifetime
seconds whatever happens, so a failed test cannot leave it running.

Usage: faultproxy.py --upstream HOST:PORT --fault MODE [--count N] [--lifetime S]
                     [--status CODE] [--retry-after S [--retry-after-date]] [--delay S]
                     [--rate BYTES_PER_SECOND] [--drip-max S]
"""
import argparse
import email.utils
import http.client
import http.server
import socket
import struct
import sys
import threading
import time

MODES = ["none", "blob-corrupt", "blob-truncate", "blob-reset", "reset", "drop", "http500", "http5xx",
         "http429", "delay", "drip", "auth-loop", "token-5xx", "bad-manifest"]


class Faults:
    def __init__(self, mode, count):
        self.mode, self.left, self.lock = mode, count, threading.Lock()

    def take(self, mode):
        """True if fault `mode` should fire now (and counts it)."""
        with self.lock:
            if self.mode != mode or self.left == 0:
                return False
            if self.left > 0:
                self.left -= 1
            return True


def log(line):
    sys.stderr.write(f"faultproxy: t={time.time():.3f} {line}\n")
    sys.stderr.flush()


def make_handler(args, faults, port):
    host, up_port = args.upstream.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            log(fmt % a)

        def fired(self, mode):
            if not faults.take(mode):
                return False
            log(f"fault {mode} GET {self.path}")
            return True

        def send_plain(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def close_fin(self):
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def close_rst(self):
            """Close with SO_LINGER 0: the kernel sends RST, not FIN."""
            self.wfile.flush()
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def retry_after(self, seconds):
            if seconds is None or seconds < 0:
                return []
            if args.retry_after_date:
                return [("Retry-After", email.utils.formatdate(time.time() + seconds, usegmt=True))]
            return [("Retry-After", str(seconds))]

        def error_headers(self):
            return self.retry_after(args.retry_after)

        def do_GET(self):
            path = self.path
            log(f"GET {path}")
            is_blob = "/blobs/sha256:" in path
            is_manifest = "/manifests/" in path
            if args.fault == "token-5xx":
                if path.startswith("/token"):
                    if self.fired("token-5xx"):
                        return self.send_plain(args.status, b'{"errors":[{"code":"UNAVAILABLE"}]}',
                                               self.error_headers())
                    return self.send_plain(200, b'{"token":"granted"}', [("Content-Type", "application/json")])
                if path.startswith("/v2/") and self.headers.get("Authorization") != "Bearer granted":
                    challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="faultproxy"'
                    return self.send_plain(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                           [("WWW-Authenticate", challenge)])
            if path.startswith("/token"):
                return self.send_plain(200, b'{"token":"never-accepted"}', [("Content-Type", "application/json")])
            if path.startswith("/v2/") and self.fired("auth-loop"):
                challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="faultproxy"'
                return self.send_plain(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"go away"}]}',
                                       [("WWW-Authenticate", challenge)])
            if self.fired("delay"):
                time.sleep(args.delay)
            if self.fired("drop"):
                return self.close_fin()
            if self.fired("reset"):
                return self.close_rst()
            if self.fired("http500"):
                return self.send_plain(500, b'{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}',
                                       self.error_headers())
            if self.fired("http5xx"):
                return self.send_plain(args.status, b'{"errors":[{"code":"UNKNOWN","message":"injected '
                                       + str(args.status).encode() + b'"}]}', self.error_headers())
            if self.fired("http429"):
                after = 1 if args.retry_after is None else args.retry_after
                return self.send_plain(429, b'{"errors":[{"code":"TOOMANYREQUESTS",'
                                       b'"message":"injected rate limit"}]}', self.retry_after(after))
            if is_manifest and self.fired("bad-manifest"):
                return self.send_plain(200, b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":',
                                       [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
            self.forward(is_blob)

        def send_upstream_headers(self, r, length):
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def drip(self, body):
            deadline = time.monotonic() + args.drip_max
            chunk = max(1, min(4096, int(args.rate // 10)))  # 4 KiB at most, ten a second at least
            sent = 0
            while sent < len(body) and time.monotonic() < deadline:
                if args.rate > 0:
                    self.wfile.write(body[sent:sent + chunk])
                    self.wfile.flush()
                    sent += chunk
                    time.sleep(min(chunk / args.rate, max(0.0, deadline - time.monotonic())))
                else:
                    time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            if sent < len(body):
                log(f"drip: --drip-max reached after {sent} bytes, sending the rest at once")
                self.wfile.write(body[sent:])

        def forward(self, is_blob):
            conn = http.client.HTTPConnection(host, int(up_port), timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request("GET", self.path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            conn.close()
            if is_blob and r.status in (200, 206) and body:
                if self.fired("blob-corrupt"):
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                elif self.fired("blob-truncate") or self.fired("blob-reset"):
                    self.send_upstream_headers(r, len(body))
                    self.wfile.write(body[: len(body) // 2])
                    return self.close_rst() if args.fault == "blob-reset" else self.close_fin()
                elif self.fired("drip"):
                    self.send_upstream_headers(r, len(body))
                    return self.drip(body)
            self.send_upstream_headers(r, len(body))
            self.wfile.write(body)

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--fault", default="none", choices=MODES)
    ap.add_argument("--count", type=int, default=-1, help="how many times the fault fires (-1: always)")
    ap.add_argument("--lifetime", type=float, default=120)
    ap.add_argument("--status", type=int, default=503, help="http5xx: the status (500..599)")
    ap.add_argument("--retry-after", type=int, default=None,
                    help="seconds in Retry-After (http429: default 1, -1 for none; http500/http5xx: none)")
    ap.add_argument("--retry-after-date", action="store_true",
                    help="send Retry-After as an HTTP-date --retry-after seconds from now")
    ap.add_argument("--delay", type=float, default=2, help="delay: seconds before answering")
    ap.add_argument("--rate", type=float, default=1024, help="drip: bytes per second (0: stall)")
    ap.add_argument("--drip-max", type=float, default=30, help="drip: most seconds one body is dripped")
    args = ap.parse_args()
    if not args.upstream.startswith("127."):
        sys.exit("faultproxy: the upstream must be on 127.0.0.0/8")
    if not 500 <= args.status <= 599:
        sys.exit("faultproxy: --status must be 500..599")
    if args.delay < 0 or args.rate < 0 or args.drip_max < 0:
        sys.exit("faultproxy: --delay, --rate and --drip-max must not be negative")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    server.RequestHandlerClass = make_handler(args, Faults(args.fault, args.count), port)
    stopper = threading.Timer(args.lifetime, server.shutdown)
    stopper.daemon = True
    stopper.start()
    print(f"ready {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
