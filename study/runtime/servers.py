"""Local HTTP servers on 127.0.0.1: static files plus small JSON POST endpoints (the paper's Nginx)."""
from __future__ import annotations

import json
import mimetypes
import threading
import urllib.parse
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from study.runtime import environment


mimetypes.add_type("application/wasm", ".wasm")


mimetypes.add_type("text/javascript", ".js")


mimetypes.add_type("text/javascript", ".mjs")


# A POST handler of LocalServer: request body -> (HTTP status, JSON answer).
PostHandler = Callable[[bytes], tuple[int, dict[str, Any]]]


MAX_POST_BYTES = 256 * 2**20


class LocalServer:
    """A static file server on 127.0.0.1 (own thread) for the pages run in headless Chromium.

    /<root>/...  a file under one of `roots` (folder name -> folder), never outside it
    /<path>      an exact entry of `content` (URL path -> file or bytes)
    POST /<path> an entry of `posts` (URL path -> handler of the body); same origin as the page, so no CORS
    """

    def __init__(self, roots: dict[str, Path], *, content: dict[str, Path | bytes] | None = None,
                 posts: dict[str, PostHandler] | None = None):
        self.roots = {name: Path(folder) for name, folder in roots.items()}
        self.content = dict(content or {})
        self.posts = dict(posts or {})
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                return str(server.resolve(urllib.parse.unquote(urllib.parse.urlsplit(path).path)) or "/nonexistent")

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                content = server.content.get(path)
                if isinstance(content, bytes):
                    self._answer(200, content, mimetypes.guess_type(path)[0] or "application/octet-stream")
                    return
                super().do_GET()

            def do_POST(self) -> None:
                handler = server.posts.get(urllib.parse.urlsplit(self.path).path)
                length = int(self.headers.get("Content-Length") or 0)
                if handler is None or not 0 <= length <= MAX_POST_BYTES:
                    code, answer = (404, {"error": f"no POST endpoint {self.path}"}) if handler is None else \
                        (413, {"error": f"body of {length} bytes (limit {MAX_POST_BYTES})"})
                else:
                    try:
                        code, answer = handler(self.rfile.read(length))
                    except Exception as exc:  # noqa: BLE001 - a bad body is a 400 for the page, not a dead server
                        code, answer = 400, {"error": f"{type(exc).__name__}: {exc}"}
                self._answer(code, json.dumps(answer).encode(), "application/json")

            def _answer(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="static-server", daemon=True)
        self._thread.start()

    def resolve(self, url_path: str) -> Path | None:
        """The file behind a URL path, never outside its root."""
        if isinstance(self.content.get(url_path), Path):
            return self.content[url_path]
        parts = [p for p in url_path.split("/") if p]
        if not parts or parts[0] not in self.roots:
            return None
        root = self.roots[parts[0]].resolve()
        target = root.joinpath(*parts[1:]).resolve()
        return target if target == root or root in target.parents else None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class StaticServer(LocalServer):
    """Serves the page, the npm folder, one TF.js model and the test images on 127.0.0.1 (own thread).

    /simple_product/...   the page (`page` folder)       /node_modules/...  web/node_modules
    /model/...            the TF.js model folder          /images/manifest.json, /images/<i><ext>
    """

    def __init__(self, page: Path, model_dir: Path, images: list[tuple[Path, int]], size: int):
        self.images = [Path(p) for p, _ in images]
        self.manifest = json.dumps({"size": size, "images": [
            {"url": f"/images/{i}{p.suffix.lower()}", "label": label} for i, (p, label) in enumerate(images)]}).encode()
        super().__init__({"simple_product": Path(page), "node_modules": environment.node_modules(),
                          "model": Path(model_dir)}, content={"/images/manifest.json": self.manifest})

    def resolve(self, url_path: str) -> Path | None:
        parts = [p for p in url_path.split("/") if p]
        if len(parts) == 2 and parts[0] == "images" and parts[1] != "manifest.json":
            index = parts[1].split(".")[0]
            if index.isdigit() and int(index) < len(self.images):
                return self.images[int(index)]
            return None
        return super().resolve(url_path)
