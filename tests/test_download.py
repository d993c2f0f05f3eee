"""download.py against a local http.server that serves a tiny EMNIST-like gzip.zip with Range support."""
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from lenet.data import DataError, load
from lenet.data.base import BYCLASS
from lenet.data.download import download, download_emnist
from lenet.data.idx import write_idx


def _tiny_release(tmp_path) -> bytes:
    images = np.zeros((30, 28, 28), np.uint8)
    images[:, 4:24, 10:14] = 200
    write_idx(tmp_path / "img.gz", images.transpose(0, 2, 1))
    write_idx(tmp_path / "lab.gz", np.arange(30, dtype=np.uint8) % 62)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(tmp_path / "img.gz", "gzip/emnist-byclass-test-images-idx3-ubyte.gz")
        z.write(tmp_path / "lab.gz", "gzip/emnist-byclass-test-labels-idx1-ubyte.gz")
        z.writestr("gzip/emnist-byclass-mapping.txt", "".join(f"{i} {ord(c)}\n" for i, c in enumerate(BYCLASS)))
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    """Serves `state["body"]`; records Range headers; `state["ranges"] = False` makes it ignore them."""
    state = {"body": _tiny_release(tmp_path), "seen": [], "ranges": True}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body, rng = state["body"], self.headers.get("Range")
            state["seen"].append(rng)
            start = int(rng.removeprefix("bytes=").split("-")[0]) if rng and state["ranges"] else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/gzip.zip"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_full_download_then_load(server, tmp_path):
    seen = []
    path = download_emnist(tmp_path / "dl", url=server["url"], expected_size=len(server["body"]),
                           progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == server["body"] and server["seen"] == [None]
    assert seen[-1] == (len(server["body"]), len(server["body"]))
    ds = load("emnist", tmp_path / "dl")
    assert len(ds) == 30 and ds.images[:, 4:24, 10:14].min() == 200  # upright again: the vertical bar


@pytest.mark.parametrize("server_honours_range", [True, False])
def test_interrupted_download_resumes(server, tmp_path, server_honours_range):
    server["ranges"] = server_honours_range
    body, half = server["body"], len(server["body"]) // 2
    dest = tmp_path / "dl" / "gzip.zip"
    dest.parent.mkdir()
    dest.with_name("gzip.zip.part").write_bytes(body[:half])
    download(server["url"], dest, expected_size=len(body), chunk=1000)
    assert server["seen"] == [f"bytes={half}-"]
    assert dest.read_bytes() == body and not dest.with_name("gzip.zip.part").exists()


def test_size_mismatch_leaves_nothing(server, tmp_path):
    dest = tmp_path / "dl" / "gzip.zip"
    with pytest.raises(DataError, match=f"has {len(server['body']):,} bytes, expected 123"):
        download(server["url"], dest, expected_size=123_456)
    assert list(dest.parent.iterdir()) == []


def test_not_an_emnist_zip_and_network_errors(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    server["body"] = buf.getvalue()
    with pytest.raises(DataError, match="did not deliver a zip with EMNIST files"):
        download_emnist(tmp_path / "a", url=server["url"], expected_size=None)
    assert not (tmp_path / "a" / "gzip.zip").exists()
    with pytest.raises(DataError, match="download of http://127.0.0.1:9/x failed"):
        download("http://127.0.0.1:9/x", tmp_path / "b" / "x", timeout=5)


def test_cli_download_progress_and_offline_error(server, tmp_path, capsys):
    import json

    from lenet import cli
    assert cli.main(["data", "download", "emnist", "--url", server["url"], "--dest", str(tmp_path / "d"),
                     "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"path": str(tmp_path / "d" / "gzip.zip")}
    assert "download [" in err and "100%" in err  # the progress bar, on stderr
    assert cli.main(["data", "download", "emnist", "--url", "http://127.0.0.1:9/gzip.zip",
                     "--dest", str(tmp_path / "e")]) == cli.EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: download of http://127.0.0.1:9/gzip.zip failed") and err.count("\n") == 1
