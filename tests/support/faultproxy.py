#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a registry, for tests. It listens
on 127.0.0.1 only and forwards to an upstream on 127.0.0.1, injecting one kind
of fault, the first COUNT times it applies (default: always):

  none            pass everything through
  blob-corrupt    flip one byte of every blob body (same length)
  blob-truncate   send half of a blob body, then close the connection
  http500         answer 500 Internal Server Error
  drop            close the connection without answering
  auth-loop       answer every /v2/ request 401 with a Bearer challenge whose
                  token service hands out tokens that are never accepted
  bad-manifest    serve a manifest that is not valid JSON

It prints "ready PORT" on stdout once listening, and stops after --lifetime
seconds whatever happens, so a failed test cannot leave it running.

Usage: faultproxy.py --upstream HOST:PORT --fault MODE [--count N] [--lifetime S]
"""
import argparse
import http.client
import http.server
import socket
import sys
import threading


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


def make_handler(upstream, faults, port):
    host, up_port = upstream.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("faultproxy: " + fmt % args + "\n")

        def send_plain(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path
            is_blob = "/blobs/sha256:" in path
            is_manifest = "/manifests/" in path
            if path.startswith("/token"):
                return self.send_plain(200, b'{"token":"never-accepted"}', [("Content-Type", "application/json")])
            if path.startswith("/v2/") and faults.take("auth-loop"):
                challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="faultproxy"'
                return self.send_plain(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"go away"}]}',
                                       [("WWW-Authenticate", challenge)])
            if faults.take("drop"):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if faults.take("http500"):
                return self.send_plain(500, b'{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}')
            if is_manifest and faults.take("bad-manifest"):
                return self.send_plain(200, b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":',
                                       [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
            self.forward(is_blob)

        def forward(self, is_blob):
            conn = http.client.HTTPConnection(host, int(up_port), timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request("GET", self.path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            conn.close()
            if is_blob and r.status in (200, 206) and body:
                if faults.take("blob-corrupt"):
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                elif faults.take("blob-truncate"):
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("connection", "transfer-encoding"):
                            self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--fault", default="none", choices=["none", "blob-corrupt", "blob-truncate", "http500", "drop",
                                                        "auth-loop", "bad-manifest"])
    ap.add_argument("--count", type=int, default=-1, help="how many times the fault fires (-1: always)")
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    if not args.upstream.startswith("127."):
        sys.exit("faultproxy: the upstream must be on 127.0.0.0/8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    server.RequestHandlerClass = make_handler(args.upstream, Faults(args.fault, args.count), port)
    stopper = threading.Timer(args.lifetime, server.shutdown)
    stopper.daemon = True
    stopper.start()
    print(f"ready {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
