import gzip

import numpy as np
import pytest
from synthetic import idx_bytes

from vaelab.core.errors import DataError
from vaelab.data.raw.idx import verify
from vaelab.data.raw.manifest import RawFile, load_manifest


def _spec_for(raw: bytes, shape) -> RawFile:
    import hashlib

    return RawFile(
        name="x-idx3-ubyte.gz", shape=tuple(shape), sha256=hashlib.sha256(raw).hexdigest()
    )


def test_good_file_verifies_and_torchvision_parses_it(tmp_path):
    from torchvision.datasets.mnist import read_image_file

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    raw = idx_bytes(images)
    verified = verify(gzip.compress(raw), _spec_for(raw, images.shape), "mirror")
    (tmp_path / "x").write_bytes(verified.idx_bytes)
    assert np.array_equal(read_image_file(str(tmp_path / "x")).numpy(), images)


def test_flipped_byte_names_file_mirror_and_both_checksums():
    raw = idx_bytes(np.full((3, 28, 28), 7, dtype=np.uint8))
    spec = _spec_for(raw, (3, 28, 28))
    damaged = bytearray(gzip.compress(raw))
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(DataError) as info:
        verify(bytes(damaged), spec, "some/mirror")
    message = str(info.value)
    assert "\n" not in message
    assert spec.name in message and "some/mirror" in message
    assert f"expected sha256 {spec.sha256}" in message
    assert "got " in message


def test_truncated_gzip_is_rejected():
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    spec = _spec_for(raw, (3, 28, 28))
    with pytest.raises(DataError, match="checksum mismatch.*truncated"):
        verify(gzip.compress(raw)[:-20], spec, "m")


def test_md5_of_gz_is_checked_when_no_sha256():
    import hashlib

    gz = gzip.compress(idx_bytes(np.zeros(5, dtype=np.uint8)), mtime=0)
    good = RawFile(name="l.gz", shape=(5,), md5_gz=hashlib.md5(gz).hexdigest())
    verify(gz, good, "m")
    with pytest.raises(DataError, match="expected md5 of .gz 0{32}, got"):
        verify(gz, RawFile(name="l.gz", shape=(5,), md5_gz="0" * 32), "m")


@pytest.mark.parametrize(
    ("shape_in_manifest", "message"),
    [
        ((4, 28, 28), r"IDX header shape \[3, 28, 28\], expected \[4, 28, 28\]"),
        ((3, 28), "bad IDX magic number 0x00000803, expected 0x00000802"),
    ],
)
def test_header_must_match_manifest_shape(shape_in_manifest, message):
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    spec = _spec_for(raw, shape_in_manifest)
    with pytest.raises(DataError, match=message):
        verify(gzip.compress(raw), spec, "m")


def test_body_shorter_than_header_says_is_rejected():
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:-10]
    with pytest.raises(DataError, match="IDX body has 2342 bytes, header says 2352"):
        verify(gzip.compress(raw), _spec_for(raw, (3, 28, 28)), "m")


def test_shipped_manifest_has_a_checksum_for_every_file():
    for dataset in ("mnist", "fashion_mnist"):
        manifest = load_manifest(dataset)
        assert len(manifest.classes) == 10
        for spec in manifest.files.values():
            assert spec.sha256 or spec.md5_gz
            assert spec.shape[0] in (60000, 10000)


def test_a_copy_verifies_by_either_checksum_and_a_mismatch_names_both():
    import hashlib

    raw = idx_bytes(np.zeros(5, dtype=np.uint8))
    published = gzip.compress(raw, mtime=0)
    regzipped = gzip.compress(raw, mtime=1, compresslevel=1)  # Debian's copy: same bytes inside
    assert published != regzipped
    spec = RawFile(
        name="l.gz",
        shape=(5,),
        sha256=hashlib.sha256(raw).hexdigest(),
        md5_gz=hashlib.md5(published).hexdigest(),
    )
    assert verify(published, spec, "m").checksum == spec.sha256
    assert verify(regzipped, spec, "m").checksum == spec.sha256
    md5_only = RawFile(name="l.gz", shape=(5,), sha256="0" * 64, md5_gz=spec.md5_gz)
    assert verify(published, md5_only, "m").checksum == spec.md5_gz
    with pytest.raises(DataError, match="checksum mismatch") as info:
        verify(regzipped, md5_only, "m")
    message = str(info.value)
    assert f"expected sha256 {'0' * 64} or md5 of .gz {spec.md5_gz}, got sha256 " in message
    assert hashlib.md5(regzipped).hexdigest() in message and "\n" not in message


def test_shipped_manifest_holds_both_checksums_of_mnist_and_fashion_mnist():
    for dataset in ("mnist", "fashion_mnist"):
        for spec in load_manifest(dataset).files.values():
            assert len(spec.sha256) == 64 and len(spec.md5_gz) == 32, (dataset, spec.name)


def test_a_gzip_that_inflates_past_its_shape_is_refused_without_inflating_it():
    import tracemalloc
    import zlib

    spec = RawFile(name="x-idx3-ubyte.gz", shape=(3, 28, 28), sha256="0" * 64)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:16]  # right shape, long body
    zeros = bytes(1 << 20)
    bomb = packer.compress(header)
    bomb += b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()  # 64 MiB
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            verify(bomb, spec, "https://mirror.invalid/mnist/")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and "https://mirror.invalid/mnist/" in message
    assert f"inflates beyond the {16 + 3 * 28 * 28:,} bytes of shape [3, 28, 28]" in message
    assert peak < 1 << 20, peak  # decompression stopped at the shape's size, not 64 MiB
