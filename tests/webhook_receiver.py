"""A real HTTP receiver for the alerts' webhook, on 127.0.0.1: it answers
500 to its first ``failures`` posts, then 200, and keeps every post."""

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, failures=0):
        self.failures = failures
        self.posts = []         # (status answered, headers, body bytes), in order
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = 500 if receiver.failures > 0 else 200
                    receiver.failures -= 1
                    receiver.posts.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def delivered(self):
        """The bodies it took (answered 200), in order."""
        with self.lock:
            return [(headers, body) for status, headers, body in self.posts if status == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signed_by(secret, headers, body):
    """Whether the post carries the right signature, checked as a receiver would."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-IPFSMaster-Signature", ""), expected)
