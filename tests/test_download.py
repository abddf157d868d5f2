"""The download helpers, against a loopback HTTP server (never the internet)."""
import functools
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest

from core.data import load_dataset
from core.download import IDX_FILES, download_cifar10, download_mnist, fetch, md5sum
from datafile_writers import tiny_cifar10, tiny_mnist


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """(folder, base URL): whatever is in folder is served on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _leftovers(folder):
    return [p.name for p in folder.rglob("*") if p.name.endswith(".part") or ".cifar-10-unpack." in p.name]


def test_download_mnist_fetches_verifies_and_loads(served, tmp_path, capsys):
    root, url = served
    written = tiny_mnist(root, gz=True)
    sums = {name: md5sum(root / name) for name in IDX_FILES}
    dest = tmp_path / "mnist"
    assert download_mnist(dest, base_url=url, checksums=sums) == dest
    assert all((dest / name).read_bytes() == (root / name).read_bytes() for name in IDX_FILES)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err  # progress is printed
    d = load_dataset("mnist", path=dest, split="test")
    assert np.array_equal(((d.x[:, 0] + 1) * 127.5).round().byte().numpy(), written["test"][0])
    assert _leftovers(dest) == []


def test_download_keeps_good_files_and_needs_no_server_then(served, tmp_path):
    root, url = served
    tiny_mnist(root, gz=True)
    sums = {name: md5sum(root / name) for name in IDX_FILES}
    dest = tmp_path / "mnist"
    download_mnist(dest, base_url=url, checksums=sums, quiet=True)
    for name in IDX_FILES:
        (root / name).unlink()  # the server now answers 404 for everything
    download_mnist(dest, base_url=url, checksums=sums, quiet=True)
    assert sorted(p.name for p in dest.iterdir()) == sorted(IDX_FILES)


def test_checksum_mismatch_discards_the_download(served, tmp_path):
    root, url = served
    (root / "file.bin").write_bytes(b"some bytes")
    with pytest.raises(ValueError, match=r"checksum mismatch .*expected 0{32}\); the download was discarded"):
        fetch(url + "file.bin", tmp_path / "out" / "file.bin", md5="0" * 32, quiet=True)
    assert not (tmp_path / "out" / "file.bin").exists() and _leftovers(tmp_path / "out") == []


def test_a_corrupt_existing_file_is_replaced(served, tmp_path):
    root, url = served
    (root / "file.bin").write_bytes(b"the real content")
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"half a downl")
    fetch(url + "file.bin", dest, md5=md5sum(root / "file.bin"), quiet=True)
    assert dest.read_bytes() == b"the real content"


def test_http_error_names_the_url_and_leaves_nothing(served, tmp_path):
    _, url = served
    with pytest.raises(OSError, match=r"could not download http://127\.0\.0\.1:\d+/absent\.gz: HTTP Error 404"):
        fetch(url + "absent.gz", tmp_path / "absent.gz", quiet=True)
    assert list(tmp_path.iterdir()) == [tmp_path / "served"]


def test_file_urls_work_too(tmp_path):
    tiny_mnist(tmp_path / "src", gz=True)
    dest = download_mnist(tmp_path / "dst", "fashion_mnist", base_url=(tmp_path / "src").as_uri(),
                          checksums={}, quiet=True)
    assert load_dataset("fashion_mnist", path=dest).x.shape == (12, 1, 28, 28)
    with pytest.raises(ValueError, match="kind must be one of"):
        download_mnist(tmp_path, "kmnist")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_cifar10_unpacks_the_archive(served, tmp_path):
    root, url = served
    written = tiny_cifar10(tmp_path / "src", per_batch=2)
    archive = _tar_gz({f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in (tmp_path / "src").iterdir()})
    (root / "cifar.tar.gz").write_bytes(archive)
    dest = tmp_path / "data"
    folder = download_cifar10(dest, url=url + "cifar.tar.gz", md5=md5sum(root / "cifar.tar.gz"), quiet=True)
    assert folder == dest / "cifar-10-batches-py"
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]  # archive and staging gone
    d = load_dataset("cifar10", path=dest, split="test")
    assert np.array_equal(((d.x + 1) * 127.5).round().byte().numpy(), written["test"][0])


def test_cifar10_archive_escaping_its_folder_is_refused(served, tmp_path):
    root, url = served
    (root / "evil.tar.gz").write_bytes(_tar_gz({"cifar-10-batches-py/data_batch_1": b"x", "../../escaped": b"gotcha"}))
    dest = tmp_path / "data"
    with pytest.raises(tarfile.TarError):
        download_cifar10(dest, url=url + "evil.tar.gz", md5=None, quiet=True)
    assert not (tmp_path / "escaped").exists() and not (dest / "cifar-10-batches-py").exists()
    assert _leftovers(dest) == []


def test_cifar10_archive_without_the_batches_folder(served, tmp_path):
    root, url = served
    (root / "other.tar.gz").write_bytes(_tar_gz({"readme.txt": b"hello"}))
    with pytest.raises(ValueError, match="no cifar-10-batches-py/ inside"):
        download_cifar10(tmp_path / "data", url=url + "other.tar.gz", md5=None, quiet=True)
