"""Gradio's page code served compressed once, cached by browsers: explorer/static_assets.py."""
import gzip
import threading
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import brotli
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from explorer import static_assets

SCRIPT = ("function hello(name) { return 'hello ' + name; }\n" * 400).encode()  # compressible, > 400 bytes


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "assets"
    (root / "sub").mkdir(parents=True)
    (root / "Index-Akn07EZk2.js").write_bytes(SCRIPT)  # a content hash in the name
    (root / "plain.css").write_bytes(b"body { color: black; }\n" * 100)
    (root / "sub" / "font-B22Nviop.woff2").write_bytes(bytes(range(256)) * 8)  # compressed already
    (root / "tiny.js").write_bytes(b"1;")
    (tmp_path / "secret.txt").write_text("not served")
    return root


def fetch(client, path, **headers):
    """(response, the body as sent: still compressed; the client would decode it)"""
    with client.stream("GET", path, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def client_for(folder):
    routes = static_assets.routes(folder)
    return TestClient(Starlette(routes=routes)), routes[0].cache


def test_each_coding_gives_the_files_own_bytes(folder):
    client, _ = client_for(folder)
    with client:
        br, sent = fetch(client, "/assets/Index-Akn07EZk2.js", **{"Accept-Encoding": "gzip, deflate, br"})
        assert br.status_code == 200 and br.headers["content-encoding"] == "br"
        assert brotli.decompress(sent) == SCRIPT and len(sent) < len(SCRIPT) / 10
        gz, sent = fetch(client, "/assets/Index-Akn07EZk2.js", **{"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip" and gzip.decompress(sent) == SCRIPT
        plain, sent = fetch(client, "/assets/Index-Akn07EZk2.js", **{"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and sent == SCRIPT
        refused, sent = fetch(client, "/assets/Index-Akn07EZk2.js", **{"Accept-Encoding": "br;q=0, gzip;q=0"})
        assert "content-encoding" not in refused.headers and sent == SCRIPT
        for r in (br, gz, plain):
            assert r.headers["content-type"].startswith(("application/javascript", "text/javascript"))
            assert r.headers["vary"] == "Accept-Encoding"
        # a compressed kind of file and a small file go as they are
        font, sent = fetch(client, "/assets/sub/font-B22Nviop.woff2", **{"Accept-Encoding": "br"})
        assert "content-encoding" not in font.headers and sent == bytes(range(256)) * 8
        assert "content-encoding" not in client.get("/assets/tiny.js", headers={"Accept-Encoding": "br"}).headers


def test_hashed_names_are_immutable_others_revalidate_with_their_etag(folder):
    client, _ = client_for(folder)
    with client:
        hashed = client.get("/assets/Index-Akn07EZk2.js")
        assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
        plain = client.get("/assets/plain.css")
        assert plain.headers["cache-control"] == "no-cache"
        again = client.get("/assets/plain.css", headers={"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert client.get("/assets/plain.css", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt", "%2e%2e/secret.txt", "missing.js", "sub",
                                  "sub/", "..%2fsecret.txt", "%00.js", "..\\secret.txt"])
def test_only_files_inside_the_folder_are_served(folder, path):
    client, cache = client_for(folder)
    with client:
        r = client.get("/assets/" + path)
    assert r.status_code == 404 and b"not served" not in r.content
    assert cache.file(unquote(path)) is None and cache.loads == 0


def test_a_file_is_read_and_compressed_once_however_many_ask_at_once(folder):
    client, cache = client_for(folder)
    bodies, errors = [], []

    def ask():
        try:
            bodies.append(fetch(client, "/assets/Index-Akn07EZk2.js", **{"Accept-Encoding": "br"})[1])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with client:
        threads = [threading.Thread(target=ask) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.get("/assets/plain.css")
    assert not errors and len(bodies) == 12 and all(brotli.decompress(b) == SCRIPT for b in bodies)
    assert cache.loads == 2


def test_a_file_that_cannot_be_read_answers_404_and_is_not_cached(folder, monkeypatch):
    client, cache = client_for(folder)
    real = Path.read_bytes

    def failing(self):
        if self.name == "plain.css":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", failing)
    with client:
        r = client.get("/assets/plain.css")
        assert r.status_code == 404 and r.text == "Not found"
        assert client.get("/assets/Index-Akn07EZk2.js").status_code == 200  # the others still served
        assert cache.loads == 1 and not cache._loading
        monkeypatch.setattr(Path, "read_bytes", real)
        assert client.get("/assets/plain.css").status_code == 200  # readable again: served


def test_the_cache_keeps_to_its_bound_dropping_the_least_recently_used(folder):
    cache = static_assets.AssetCache(folder, max_bytes=len(SCRIPT) + 1000)
    first = cache.get(cache.file("Index-Akn07EZk2.js"))
    cache.get(cache.file("plain.css"))
    assert cache._bytes <= cache.max_bytes or len(cache._items) == 1
    assert cache.file("Index-Akn07EZk2.js") not in cache._items  # the older one went
    assert cache.get(cache.file("Index-Akn07EZk2.js")) == first and cache.loads == 3  # read again when asked


def test_a_range_request_gets_the_plain_file(folder):
    client, _ = client_for(folder)
    with client:
        r = client.get("/assets/Index-Akn07EZk2.js", headers={"Range": "bytes=0-9", "Accept-Encoding": "br"})
    assert r.status_code == 206 and r.content == SCRIPT[:10]


def test_the_app_serves_gradios_page_code_through_the_cache(app_url):
    """The route stands before Gradio's own: the app's page code comes compressed, immutable."""
    from gradio.route_utils import BUILD_PATH_LIB

    name = next(p.name for p in sorted(Path(BUILD_PATH_LIB).glob("Index-*.js")))
    request = urllib.request.Request(app_url.rstrip("/") + "/assets/" + name, headers={"Accept-Encoding": "br"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body, headers = r.read(), r.headers
    assert headers["Cache-Control"] == static_assets.IMMUTABLE and headers["Content-Encoding"] == "br"
    assert brotli.decompress(body) == (Path(BUILD_PATH_LIB) / name).read_bytes()
