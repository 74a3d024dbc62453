#!/usr/bin/env python3
"""A deliberately broken callplane for the SIP fail-safe tests (simulates faults, not the platform).

    fault_server.py PORT MODEFILE

Every POST answers according to the mode named in MODEFILE (re-read per request):
  slow     sleep 6 s, then a well-formed challenge (a Kamailio that waited would relay it)
  http401  HTTP 401 whose body *looks* like a good challenge (non-200 must not be trusted)
  http503  HTTP 503, same body
  nonjson  HTTP 200 text/html
  unknown  HTTP 200 JSON with an unknown "result"
Each answer would let the request through if Kamailio trusted it, so a test can only pass when
Kamailio fails safe. Binds 127.0.0.1 only. Requests are appended to MODEFILE + ".log".
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
MODEFILE = sys.argv[2]

CHALLENGE = {
    "result": "challenge",
    "code": 401,
    "reason": "Unauthorized",
    "header": 'WWW-Authenticate: Digest realm="fault.test", nonce="abc", algorithm=MD5, qop="auth"',
    "headers": ['WWW-Authenticate: Digest realm="fault.test", nonce="abc", algorithm=MD5, qop="auth"'],
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.answer(200, '{"status":"ok"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length).decode(errors="replace")
        try:
            with open(MODEFILE) as f:
                mode = f.read().strip()
        except OSError:
            mode = "http503"
        with open(MODEFILE + ".log", "a") as f:
            f.write(json.dumps({"mode": mode, "path": self.path,
                                "authorization": self.headers.get("Authorization", ""),
                                "contentType": self.headers.get_all("Content-Type") or [],
                                "body": body}) + "\n")
        if mode == "slow":
            time.sleep(6)
            self.answer(200, json.dumps(CHALLENGE))
        elif mode == "http401":
            self.answer(401, json.dumps(CHALLENGE))
        elif mode == "http503":
            self.answer(503, json.dumps(CHALLENGE))
        elif mode == "nonjson":
            self.answer(200, "<html><body>Bad gateway</body></html>", "text/html")
        else:
            self.answer(200, json.dumps({"result": "maybe", "code": 200}))


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
