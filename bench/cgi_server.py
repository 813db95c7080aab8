"""A minimal HTTP server running ``git http-backend`` as CGI: the baseline of ``bench/git_hosting.py``.

Bodies are streamed both ways (a thread copies the request body, chunked or not, into the CGI's stdin while its
stdout is copied to the client), in 64 KiB pieces: what any CGI-capable web server does. No authentication.

    python bench/cgi_server.py --port 8080 --root DIR   (serves DIR/NAME.git)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO
from urllib.parse import urlsplit

PIECE = 64 * 1024


def _copy_body(handler: BaseHTTPRequestHandler, sink: IO[bytes]) -> None:
    try:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(handler.rfile.readline().split(b";")[0], 16):
                left = size
                while left:
                    piece = handler.rfile.read(min(left, PIECE))
                    if not piece:
                        return
                    sink.write(piece)
                    left -= len(piece)
                handler.rfile.readline()
            handler.rfile.readline()
        else:
            left = int(handler.headers.get("Content-Length") or 0)
            while left:
                piece = handler.rfile.read(min(left, PIECE))
                if not piece:
                    return
                sink.write(piece)
                left -= len(piece)
    except BrokenPipeError:
        return
    finally:
        sink.close()


class GitHandler(BaseHTTPRequestHandler):
    root = "."

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            {
                "GIT_PROJECT_ROOT": self.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": "bench",
                "REMOTE_ADDR": self.client_address[0],
                "REQUEST_METHOD": self.command,
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
        )
        if "Content-Length" in self.headers:
            env["CONTENT_LENGTH"] = self.headers["Content-Length"]
        if "Content-Encoding" in self.headers:
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if "Git-Protocol" in self.headers:
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        child = subprocess.Popen(
            ["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        assert child.stdin is not None and child.stdout is not None
        feeder = threading.Thread(target=_copy_body, args=(self, child.stdin), daemon=True)
        feeder.start()
        status, headers = 200, []
        while (line := child.stdout.readline().rstrip(b"\r\n")) != b"":
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        shutil.copyfileobj(child.stdout, self.wfile, PIECE)
        self.wfile.flush()
        feeder.join()
        child.wait()
        self.close_connection = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    GitHandler.root = args.root
    server = ThreadingHTTPServer(("127.0.0.1", args.port), GitHandler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
