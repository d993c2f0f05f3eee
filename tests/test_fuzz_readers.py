"""Property-based fuzzing of the IDX and EMNIST zip readers: any bytes give an array or a
DataError, never another exception and never a huge allocation."""
import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lenet.data import DataError, load
from lenet.data.idx import read_idx, write_idx

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _idx_bytes(array: np.ndarray, tmp_path, compress: bool) -> bytes:
    path = tmp_path / ("a.gz" if compress else "a")
    write_idx(path, array)
    return path.read_bytes()


def _valid_images(tmp_path, compress=False) -> bytes:
    rng = np.random.default_rng(0)
    return _idx_bytes(rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), tmp_path, compress)


def _read_or_data_error(data: bytes):
    try:
        out = read_idx(data)
    except DataError as e:
        assert str(e)  # a message, never an empty error
        return None
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim in (1, 3)
    return out


@FAST
@given(data=st.binary(max_size=2048))
def test_any_bytes_are_an_array_or_a_data_error(data):
    _read_or_data_error(data)


@FAST
@given(cut=st.integers(0, 28 * 28 * 3 + 15), flips=st.lists(st.tuples(st.integers(0, 28 * 28 * 3 + 15),
                                                                      st.integers(0, 255)), max_size=4))
def test_mutated_idx_files(tmp_path, cut, flips):
    valid = bytearray(_valid_images(tmp_path))
    for at, value in flips:
        valid[at % len(valid)] = value
    out = _read_or_data_error(bytes(valid[:cut]) if cut < len(valid) else bytes(valid))
    if out is not None:  # whatever was accepted matches its own header exactly
        assert out.size == int(np.prod(out.shape))


@FAST
@given(cut=st.integers(0, 400))
def test_truncated_gzip_idx_is_a_data_error(tmp_path, cut):
    valid = _valid_images(tmp_path, compress=True)
    if cut < len(valid):
        with pytest.raises(DataError):
            read_idx(valid[:cut])


def test_a_header_announcing_billions_of_items_is_refused_before_allocating():
    header = (2051).to_bytes(4, "big") + (4_000_000_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with pytest.raises(DataError):
        read_idx(header)


def _emnist_zip(tmp_path) -> bytes:
    rng = np.random.default_rng(1)
    imgs = _idx_bytes(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), tmp_path, True)
    (tmp_path / "l").mkdir(exist_ok=True)
    write_idx(tmp_path / "l" / "labels.gz", np.array([0, 1, 2, 61], np.uint8))
    labs = (tmp_path / "l" / "labels.gz").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("gzip/emnist-byclass-test-images-idx3-ubyte.gz", imgs)
        z.writestr("gzip/emnist-byclass-test-labels-idx1-ubyte.gz", labs)
    return buf.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10_000)))
def test_mutated_emnist_zips(tmp_path, flips, cut):
    data = bytearray(_emnist_zip(tmp_path))
    for at, value in flips:
        data[at % len(data)] = value
    if cut is not None:
        data = data[:cut % len(data)]
    path = tmp_path / "gzip.zip"
    path.write_bytes(bytes(data))
    try:
        ds = load("emnist", path)
    except DataError as e:
        assert str(e)
    else:
        assert len(ds.images) == len(ds.labels) and ds.images.shape[1:] == (28, 28)


def test_the_unmutated_zip_loads(tmp_path):
    path = tmp_path / "gzip.zip"
    path.write_bytes(_emnist_zip(tmp_path))
    ds = load("emnist", path)
    assert len(ds) == 4 and ds.classes[61] == "z"
