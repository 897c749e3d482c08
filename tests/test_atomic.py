"""Atomic writes: every kind of product keeps its previous file when a write fails or dies."""

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.ascii import ui as ascii_ui
from astropy.table import Table
from stdatamodels.jwst import datamodels

from fault_matrix import half_then_full_disk, leftovers
from tso_steps.atomic import atomic_saves


@pytest.mark.parametrize("kind", ["fits", "asdf", "ecsv", "hdulist"])
def test_atomic_saves_keeps_the_previous_file_of_every_kind(tmp_path, monkeypatch, kind):
    model = datamodels.CubeModel(data=np.ones((2, 4, 4), np.float32))
    table = Table({"a": [1, 2, 3]})
    path = tmp_path / f"x.{'fits' if kind == 'hdulist' else kind}"

    def write():
        if kind in ("fits", "asdf"):
            model.save(path)
        elif kind == "ecsv":
            table.write(path, format="ascii.ecsv", overwrite=True)
        else:
            fits.HDUList([fits.PrimaryHDU(np.zeros(3))]).writeto(path, overwrite=True)

    write()  # not atomic here, but the first file
    before = path.read_bytes()
    import asdf

    writer = {
        "fits": (fits.HDUList, "writeto"),
        "hdulist": (fits.HDUList, "writeto"),
        "asdf": (asdf.AsdfFile, "write_to"),
        "ecsv": (ascii_ui, "write"),
    }[kind]
    half_then_full_disk(monkeypatch, *writer)
    with atomic_saves(), pytest.raises(OSError, match="unchanged") as info:
        write()
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    with atomic_saves():  # and a good write replaces it, whole
        write()
    assert leftovers(tmp_path) == []
    assert path.stat().st_size > 0


def test_atomic_saves_nests_and_restores_the_writers(tmp_path):
    originals = (
        datamodels.CubeModel.save,
        Table.__dict__["write"],
        fits.HDUList.__dict__["writeto"],
    )
    with atomic_saves():
        with atomic_saves():
            assert Table.__dict__["write"] is not originals[1]
        assert Table.__dict__["write"] is not originals[1]  # still active for the outer one
    assert datamodels.CubeModel.save is originals[0]
    assert Table.__dict__["write"] is originals[1]
    assert fits.HDUList.__dict__["writeto"] is originals[2]
    table = Table({"a": [1]})
    table.write(tmp_path / "t.ecsv")
    with atomic_saves(), pytest.raises(OSError, match="exists"):  # no overwrite: as before
        table.write(tmp_path / "t.ecsv")


def test_a_killed_writer_leaves_the_previous_file(tmp_path):
    """SIGKILL in the middle of an ECSV write: the final path keeps the previous content."""
    path = tmp_path / "x_whtlt.ecsv"
    Table({"flux": [1.0, 2.0]}).write(path)
    before = path.read_bytes()
    marker = tmp_path / "half_written"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from astropy.io.ascii import ui as ascii_ui
        from astropy.table import Table
        from tso_steps.atomic import atomic_saves

        def slow(table, output, **kwargs):
            Path(output).write_text("# half a file")
            Path({str(marker)!r}).write_text("")
            time.sleep(60)  # killed here, half-way

        ascii_ui.write = slow
        with atomic_saves():
            Table({{"flux": list(range(1000))}}).write({str(path)!r}, overwrite=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):
            if marker.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), "the writer never started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert path.read_bytes() == before
    # a kill leaves at most the hidden temporary folder, never a partial product
    assert all(re.fullmatch(r"\.x_whtlt\.ecsv\..*\.tmp", n) for n in leftovers(tmp_path))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64])
def test_unsigned_arrays_are_written_in_place_byte_identical(tmp_path, dtype):
    # an unsigned DQ is written without astropy's signed copies: same bytes, array restored
    rng = np.random.default_rng(5)
    hdu = fits.ImageHDU(rng.integers(0, np.iinfo(dtype).max, (3, 4, 5), dtype=dtype), name="DQ")
    science = fits.ImageHDU(rng.normal(size=(3, 4, 5)).astype(np.float32), name="SCI")
    before = hdu.data.copy()
    fits.HDUList([fits.PrimaryHDU(), science, hdu]).writeto(tmp_path / "plain.fits")
    with atomic_saves():
        fits.HDUList([fits.PrimaryHDU(), science, hdu]).writeto(tmp_path / "lean.fits")
    assert (tmp_path / "plain.fits").read_bytes() == (tmp_path / "lean.fits").read_bytes()
    np.testing.assert_array_equal(hdu.data, before)
    assert hdu.data.dtype == dtype
    with fits.open(tmp_path / "lean.fits") as written:
        assert written["DQ"].data.dtype == dtype
        np.testing.assert_array_equal(written["DQ"].data, before)


def test_a_saved_model_keeps_its_dq_and_reads_back(tmp_path):
    model = datamodels.CubeModel((2, 3, 4))
    model.dq[:] = np.arange(24, dtype=np.uint32).reshape(2, 3, 4) * 170_000_000
    before = model.dq.copy()
    with atomic_saves():
        model.save(tmp_path / "cube.fits")
    np.testing.assert_array_equal(model.dq, before)
    with datamodels.open(tmp_path / "cube.fits") as written:
        np.testing.assert_array_equal(written.dq, before)
