import gzip
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from core import datafiles
from core.datafiles import (MAX_POINTS, MAX_POINTS_BYTES, DataFileError, parse_points_csv, points_csv_text,
                            points_from_ink, read_cifar10, read_cifar_batch, read_idx, read_image_folder, read_mnist,
                            read_points_csv)
from datafile_writers import idx_bytes, tiny_cifar10, tiny_mnist, write_cifar_batch, write_idx


# --- IDX ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1], dtype=np.uint8)
    got = read_idx(write_idx(tmp_path / "img", images, gz), 3)
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "lab", labels, gz), 1), labels)


def test_idx_gzip_is_recognised_by_content_not_name(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"  # no .gz, yet gzipped
    path.write_bytes(gzip.compress(idx_bytes(np.arange(7))))
    assert np.array_equal(read_idx(path, 1), np.arange(7))


def test_idx_bad_magic_names_file_and_format(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(5), magic=1234)
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte: bad magic number 1234, expected 2051 "
                                            r"\(IDX unsigned-byte 3-D images\)"):
        read_idx(path, 3)
    labels = write_idx(tmp_path / "labels", np.zeros(5))  # a labels file where images were expected
    with pytest.raises(DataFileError, match="bad magic number 2049, expected 2051"):
        read_idx(labels, 3)


def test_idx_truncated_and_overlong_files(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28)))
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(data[:-10])
    with pytest.raises(DataFileError, match=r"truncated: the header promises 3x28x28 = 2352 bytes of data, found 2342"):
        read_idx(path, 3)
    path.write_bytes(data[:10])  # cut inside the header
    with pytest.raises(DataFileError, match="truncated header"):
        read_idx(path, 3)
    path.write_bytes(data + b"\0")
    with pytest.raises(DataFileError, match="more data than the header"):
        read_idx(path, 3)
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(data)[:-30])  # a broken gzip stream
    with pytest.raises(DataFileError, match="cut.gz"):
        read_idx(gz, 3)


def test_idx_header_claiming_huge_sizes_is_reported_not_allocated(tmp_path):
    path = tmp_path / "liar"
    path.write_bytes((2051).to_bytes(4, "big") + b"\xff\xff\xff\xff" * 3 + b"\0" * 16)
    with pytest.raises(DataFileError, match="found 16"):
        read_idx(path, 3)


def test_idx_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="file not found"):
        read_idx(tmp_path / "nothing", 1)


@pytest.mark.parametrize("gz", [False, True])
def test_read_mnist_both_splits(tmp_path, gz):
    written = tiny_mnist(tmp_path, gz=gz)
    for split in ("train", "test"):
        images, labels = read_mnist(tmp_path, split)
        assert np.array_equal(images, written[split][0])
        assert labels.dtype == np.int64 and np.array_equal(labels, written[split][1])


def test_read_mnist_finds_raw_subfolder_and_dotted_names(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_idx(raw / "train-images.idx3-ubyte", np.ones((2, 28, 28)))
    write_idx(raw / "train-labels.idx1-ubyte", np.array([7, 8]))
    images, labels = read_mnist(tmp_path)
    assert images.shape == (2, 28, 28) and labels.tolist() == [7, 8]


def test_read_mnist_errors(tmp_path):
    with pytest.raises(DataFileError, match="not a folder"):
        read_mnist(tmp_path / "missing")
    with pytest.raises(DataFileError, match="no train-images-idx3-ubyte .* expected the IDX files"):
        read_mnist(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        read_mnist(tmp_path, "valid")
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2))
    with pytest.raises(DataFileError, match="holds 3 images but .* holds 2 labels"):
        read_mnist(tmp_path)


# --- CIFAR-10 -----------------------------------------------------------------------------------

def test_read_cifar10_from_folder_or_its_parent(tmp_path):
    written = tiny_cifar10(tmp_path / "cifar-10-batches-py", per_batch=3)
    for folder in (tmp_path, tmp_path / "cifar-10-batches-py"):
        for split, n in (("train", 15), ("test", 3)):
            images, labels = read_cifar10(folder, split)
            assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8
            assert np.array_equal(images, written[split][0]) and np.array_equal(labels, written[split][1])


def test_cifar_batch_pixel_layout_is_rgb_planes(tmp_path):
    row = np.zeros(3072, dtype=np.uint8)
    row[:1024], row[1024 + 33] = 200, 100  # the whole red plane; green at (row 1, col 1)
    images, _ = read_cifar_batch(write_cifar_batch(tmp_path / "b", row[None], [3]))
    assert (images[0, 0] == 200).all() and images[0, 1, 1, 1] == 100 and images[0, 1].sum() == 100


def test_cifar_batch_written_by_python2_numpy_names_loads(tmp_path):
    # The published files name numpy.core.multiarray (numpy 1); numpy 2 writes numpy._core.
    path = write_cifar_batch(tmp_path / "b", np.full((2, 3072), 9, np.uint8), [0, 9])
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, labels = read_cifar_batch(path)
    assert (images == 9).all() and labels.tolist() == [0, 9]


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


@pytest.mark.parametrize("evil", ["os.mkdir", "builtins.eval"])
def test_malicious_pickle_is_refused_without_running(tmp_path, evil):
    marker = tmp_path / "ran"
    payload = _Payload(str(marker)) if evil == "os.mkdir" else _Eval(f"__import__('os').mkdir({str(marker)!r})")
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=2))
    with pytest.raises(DataFileError, match=r"refused to load .*(mkdir|eval).*not one"):
        read_cifar_batch(path)
    assert not marker.exists()


class _Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return eval, (self.code,)


def test_cifar_errors_name_the_file(tmp_path):
    tiny_cifar10(tmp_path, per_batch=1)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataFileError, match="missing data_batch_3; expected the CIFAR-10 python batches"):
        read_cifar10(tmp_path)
    with pytest.raises(DataFileError, match="not a folder"):
        read_cifar10(tmp_path / "nope")
    bad = tmp_path / "bad"
    cases = {
        b"not a pickle at all": "cannot unpickle",
        pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1]}, protocol=2)[:-20]: "cannot unpickle",
        pickle.dumps([1, 2], protocol=2): "holds a list",
        pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [1]}, protocol=2): r"'data' is uint8 \(1, 100\)",
        pickle.dumps({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, protocol=2): "'data' is float32",
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}, protocol=2): "integers in 0..9",
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, protocol=2): "'labels' must be 2",
    }
    for content, message in cases.items():
        bad.write_bytes(content)
        with pytest.raises(DataFileError, match=message) as info:
            read_cifar_batch(bad)
        assert str(bad) in str(info.value)


# --- image folders ------------------------------------------------------------------------------

def _solid(mode, size, colour):
    return Image.new(mode, size, colour)


def _image_zoo(folder):
    """One image per awkward mode, each a single colour whose RGB result is known exactly."""
    folder.mkdir(parents=True, exist_ok=True)
    _solid("RGB", (40, 20), (10, 200, 30)).save(folder / "a_rgb.png")
    _solid("RGBA", (32, 32), (255, 0, 0, 0)).save(folder / "b_rgba_clear.png")  # transparent -> white
    _solid("L", (20, 50), 77).save(folder / "c_grey.png")
    pal = Image.new("P", (24, 24), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.save(folder / "d_palette.png")
    Image.fromarray(np.full((16, 16), 0x8000, dtype=np.uint16)).save(folder / "e_16bit.png")
    _solid("RGB", (64, 48), (120, 60, 200)).save(folder / "f_photo.JPG", quality=95)
    return {"a_rgb": (10, 200, 30), "b_rgba_clear": (255, 255, 255), "c_grey": (77, 77, 77),
            "d_palette": (0, 0, 255), "e_16bit": (128, 128, 128), "f_photo": (120, 60, 200)}


def test_image_folder_converts_every_mode_to_rgb(tmp_path):
    expected = _image_zoo(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image, and not named like one")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    images, labels, class_names, skipped = read_image_folder(tmp_path, size=32)
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    assert labels is None and class_names is None
    assert [p.name for p, _ in skipped] == ["broken.png"]
    for img, (name, rgb) in zip(images, sorted(expected.items())):
        tolerance = 3 if name == "f_photo" else 0  # JPEG is lossy
        assert np.abs(img.reshape(3, -1).astype(int) - np.array(rgb)[:, None]).max() <= tolerance, name


def test_image_folder_greyscale_and_size(tmp_path):
    _solid("RGB", (50, 30), (255, 0, 0)).save(tmp_path / "red.png")
    images, *_ = read_image_folder(tmp_path, size=16, channels=1)
    assert images.shape == (1, 1, 16, 16) and (images == 76).all()  # ITU-R 601 luma of pure red


def test_image_folder_resizes_short_side_and_crops_centre(tmp_path):
    a = np.zeros((64, 128, 3), np.uint8)  # left half red, right half blue, 2:1 landscape
    a[:, :64, 0], a[:, 64:, 2] = 255, 255
    Image.fromarray(a).save(tmp_path / "wide.png")
    img = read_image_folder(tmp_path, size=32)[0][0]
    # resized to 64x32, the centre 32 columns are kept: 16 red then 16 blue
    assert (img[0, :, :14] == 255).all() and (img[2, :, :14] == 0).all()
    assert (img[2, :, 18:] == 255).all() and (img[0, :, 18:] == 0).all()


def test_image_folder_subfolders_become_classes(tmp_path):
    for rel in ("dogs/b.png", "cats/a.png", "dogs/deep/c.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        _solid("RGB", (8, 8), (1, 2, 3)).save(tmp_path / rel)
    _, labels, class_names, _ = read_image_folder(tmp_path, size=8)
    assert class_names == ["cats", "dogs"] and labels.tolist() == [0, 1, 1]


def test_image_folder_refuses_oversized_images_before_decoding(tmp_path):
    _solid("RGB", (200, 100), (0, 0, 0)).save(tmp_path / "big.png")
    _solid("RGB", (50, 50), (0, 0, 0)).save(tmp_path / "small.png")
    images, _, _, skipped = read_image_folder(tmp_path, size=8, max_pixels=10_000)
    assert len(images) == 1
    assert [(p.name, why) for p, why in skipped] == [("big.png", "200x100 = 20000 pixels is over the limit of 10000")]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataFileError, match="not a folder"):
        read_image_folder(tmp_path / "absent")
    with pytest.raises(DataFileError, match="no readable .png/.jpg/.jpeg images .no files"):
        read_image_folder(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"definitely not a jpeg")
    with pytest.raises(DataFileError, match=r"no readable .*x\.jpg: cannot identify image file"):
        read_image_folder(tmp_path)


# --- CSV files of 2-D points --------------------------------------------------------------------

def rows_text(n: int, header: str | None = None) -> str:
    return (header + "\n" if header else "") + "".join(f"{i},{-0.5 * i}\n" for i in range(n))


def test_points_csv_exact_values_with_or_without_a_header():
    expected = np.array([[i, -0.5 * i] for i in range(50)], dtype=np.float64)
    for text in (rows_text(50), rows_text(50, "x,y"), rows_text(50, "X;Y"), "# my shape\n\n" + rows_text(50, "x,y")):
        got = parse_points_csv(text)
        assert got.dtype == np.float64 and np.array_equal(got, expected)
    spaced = "".join(f"  {i}\t{-0.5 * i} \r\n" for i in range(50))  # tabs, spaces and Windows line ends
    assert np.array_equal(parse_points_csv(spaced), expected)
    assert np.array_equal(parse_points_csv("1e-3;2.5E2\n-7,+8\n", min_points=2), [[1e-3, 250.0], [-7.0, 8.0]])


@pytest.mark.parametrize("text, message", [
    (rows_text(10) + "3,abc\n" + rows_text(40), r"line 11: 'abc' is not a number; expected one point per line as x,y"),
    (rows_text(10) + "nan,1\n" + rows_text(40), r"line 11: 'nan' is not a finite number \(NaN and infinity"),
    (rows_text(10) + "1,inf\n" + rows_text(40), r"line 11: 'inf' is not a finite number"),
    (rows_text(10) + "1,1e999\n" + rows_text(40), r"line 11: '1e999' is not a finite number"),
    (rows_text(10) + "1,2,3\n" + rows_text(40), r"line 11: 3 values in '1,2,3'; expected one point per line"),
    (rows_text(10) + "7\n" + rows_text(40), r"line 11: 1 values"),
    ("x,y\n" + rows_text(49), r"found 49 points; at least 50 are needed to train"),
    ("x,y\n", r"found 0 points; at least 50"),
    ("", r"found 0 points"),
])
def test_points_csv_bad_input_says_what_and_where(text, message):
    with pytest.raises(DataFileError, match=message):
        parse_points_csv(text)


def test_points_csv_limits_on_count_and_size():
    assert len(parse_points_csv(rows_text(MAX_POINTS))) == MAX_POINTS
    with pytest.raises(DataFileError, match=r"more than 100,000 points; at most 100,000 are allowed"):
        parse_points_csv(rows_text(MAX_POINTS + 1))
    with pytest.raises(DataFileError, match=r"over the limit of 8 MB"):
        parse_points_csv("1,2\n" * (MAX_POINTS_BYTES // 4 + 1))


def test_points_csv_files(tmp_path):
    good = tmp_path / "ok.csv"
    good.write_bytes(b"\xef\xbb\xbf" + rows_text(60, "x,y").encode())  # a BOM, as Excel writes
    assert np.array_equal(read_points_csv(good), [[i, -0.5 * i] for i in range(60)])
    with pytest.raises(DataFileError, match="file not found"):
        read_points_csv(tmp_path / "missing.csv")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(DataFileError, match="photo.csv: not a text file"):
        read_points_csv(binary)
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:  # sparse: the size is checked before a byte is read
        f.truncate(MAX_POINTS_BYTES + 1)
    with pytest.raises(DataFileError, match=r"huge.csv: 8.0 MB is over the limit of 8 MB"):
        read_points_csv(huge)


def test_points_csv_text_round_trips_float32_exactly():
    xy = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    text = points_csv_text(xy)
    assert text.startswith("x,y\n") and text.count("\n") == 51
    assert np.array_equal(parse_points_csv(text).astype(np.float32), xy)


def test_ink_pixels_become_their_centres_with_y_up():
    ink = np.zeros((3, 4), dtype=bool)
    ink[0, 0] = ink[2, 3] = ink[1, 2] = True
    # raster order: row 0 first; pixel (r, c) -> (c + 0.5, H - r - 0.5) with H = 3
    assert np.array_equal(points_from_ink(ink), [[0.5, 2.5], [2.5, 1.5], [3.5, 0.5]])
    assert points_from_ink(np.zeros((2, 2), bool)).shape == (0, 2)
    with pytest.raises(ValueError, match="must be 2-D"):
        points_from_ink(np.zeros((2, 2, 2), bool))


def test_folder_sha256_names_every_image_by_path_and_bytes(tmp_path):
    import hashlib

    (tmp_path / "b").mkdir()
    (tmp_path / "a.png").write_bytes(b"one")
    (tmp_path / "b" / "c.JPG").write_bytes(b"two")
    (tmp_path / "notes.txt").write_bytes(b"not an image")
    lines = [f"a.png\0{hashlib.sha256(b'one').hexdigest()}\n", f"b/c.JPG\0{hashlib.sha256(b'two').hexdigest()}\n"]
    assert datafiles.folder_sha256(tmp_path) == hashlib.sha256("".join(lines).encode()).hexdigest()
    before = datafiles.folder_sha256(tmp_path)
    (tmp_path / "a.png").rename(tmp_path / "d.png")  # a renamed file is other data
    assert datafiles.folder_sha256(tmp_path) != before
