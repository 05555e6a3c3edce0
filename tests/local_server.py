"""A static file server on 127.0.0.1 for the tests that download lab assets (no network needed)."""
from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class LocalServer:
    """Serves ``directory`` at :attr:`url` from a thread, recording the paths it was asked for."""

    def __init__(self, directory: str | Path):
        requests = self.requests = []

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet; record instead
                requests.append(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(directory)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False
