import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from tso_steps.exposure import dispersion_axis
from tso_steps.masks import (
    centroid_mask,
    choose_source_mask,
    image_mask,
    read_mask_file,
    source_mask_from_model,
    trace_mask,
)
from tso_steps.vectors import add_vectors


def test_trace_mask_covers_band_around_each_order():
    centers = np.array([np.full(50, 10.0), np.linspace(20, 30, 50)])
    mask = trace_mask((40, 50), centers, widths=1.0, n_widths=2.0, pad=1.0)
    # half-width 3 px around row 10, and around the sloped second order
    assert mask[7:14, :].all()
    assert not mask[0:6, :].any()
    assert mask[20, 0] and mask[30, 49] and not mask[35, 49]


def test_trace_mask_along_y_and_nan_centres():
    centers = np.full(40, 5.0)
    centers[:10] = np.nan
    mask = trace_mask((40, 12), centers, dispersion_axis=0, widths=1.0, n_widths=1.0, pad=0.0)
    assert mask.shape == (40, 12)
    assert not mask[:10].any()
    assert mask[10:, 4:7].all() and not mask[10:, 7:].any()


def test_trace_mask_rejects_wrong_length():
    with pytest.raises(ValueError, match="dispersion axis"):
        trace_mask((10, 20), np.zeros(19))


def test_centroid_mask_unites_discs_of_every_position():
    mask = centroid_mask((50, 50), [10.0, 30.0], [10.0, 10.0], widths=1.0, n_widths=2.0, pad=0.0)
    assert mask[10, 10] and mask[10, 30] and mask[10, 12]
    assert not mask[10, 20] and not mask[40, 40]
    assert mask.sum() == pytest.approx(2 * np.pi * 4, rel=0.3)


def test_image_mask_finds_source_and_leaves_background():
    rng = np.random.default_rng(0)
    image = rng.normal(5.0, 1.0, (64, 64))
    yy, xx = np.indices(image.shape)
    image += 200 * np.exp(-0.5 * ((yy - 32) ** 2 + (xx - 20) ** 2) / 2.0**2)
    mask = image_mask(image, n_sigma=3, dilation=2)
    assert mask[32, 20] and mask[32, 27]
    assert not mask[5, 60]
    assert 0.01 < mask.mean() < 0.1  # only the blob (and its dilation)


def test_image_mask_works_when_source_covers_most_pixels():
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 1.0, (100, 100))
    image[:, 10:90] += 50.0  # 80 % of the array lit
    mask = image_mask(image, dilation=0, smooth=1)
    assert mask[:, 12:88].mean() > 0.99
    assert mask[:, :8].mean() < 0.01


@pytest.mark.parametrize("suffix", [".npy", ".fits", ".asdf"])
def test_read_mask_file_round_trips(tmp_path, suffix):
    dark = np.zeros((8, 12), dtype=bool)
    dark[:, :4] = True
    path = tmp_path / f"mask{suffix}"
    if suffix == ".npy":
        np.save(path, dark)
    elif suffix == ".fits":
        fits.HDUList(
            [fits.PrimaryHDU(), fits.ImageHDU(dark.astype(np.uint8), name="MASK")]
        ).writeto(path)
    else:
        import asdf

        asdf.AsdfFile({"one_over_f_mask": dark.astype(np.uint8)}).write_to(path)
    np.testing.assert_array_equal(read_mask_file(path, (8, 12)), dark)


def test_read_mask_file_checks_shape(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.ones((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        read_mask_file(path, (5, 4))


def _spectral_model(exp_type="NRS_BRIGHTOBJ", shape=(32, 64)):
    model = datamodels.CubeModel(np.zeros((3, *shape), dtype=np.float32))
    model.meta.exposure.type = exp_type
    return model


def test_source_mask_from_model_uses_trace_center_and_vectors():
    model = _spectral_model()
    model.trace_center = np.full((1, 64), 16.0)
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0))  # tso_trace reports FWHM: sigma 1 px
    add_vectors(model, {"trace_width": [fwhm] * 3, "trace_position": [15.5, 16.0, 16.5]})
    mask, description = source_mask_from_model(model, (32, 64), n_widths=2.0, pad=1.0)
    assert "trace_center" in description
    # half-width 2 x 1 + 1 + half the 1 px spread of trace_position = 3.5 px
    assert mask[13:20].all() and not mask[:13].any() and not mask[20:].any()


def test_source_mask_from_model_uses_centroids():
    model = datamodels.CubeModel(np.zeros((3, 40, 40), dtype=np.float32))
    model.meta.exposure.type = "NRC_TSIMAGE"
    add_vectors(model, {"centroid_x": [20.0] * 3, "centroid_y": [21.0] * 3})
    mask, description = source_mask_from_model(model, (40, 40))
    assert "centroid" in description
    assert mask[21, 20] and not mask[0, 0]


def test_source_mask_from_model_without_vectors_is_none():
    mask, description = source_mask_from_model(_spectral_model(), (32, 64))
    assert mask is None and "no trace" in description


def test_choose_source_mask_applies_file_method_and_union(tmp_path):
    model = _spectral_model()
    model.trace_center = np.full((1, 64), 16.0)
    blob = np.zeros((32, 64), bool)
    blob[2:5, 40:44] = True  # a second source only the image threshold sees
    calls = []

    def threshold():
        calls.append(1)
        return blob

    trace_only = choose_source_mask(model, (32, 64), threshold, mask_method="trace")
    assert trace_only[16].all() and not trace_only[blob].any() and not calls
    union = choose_source_mask(model, (32, 64), threshold)
    assert union[16].all() and union[blob].all()
    image_only = choose_source_mask(model, (32, 64), threshold, mask_method="image")
    np.testing.assert_array_equal(image_only, blob)
    path = tmp_path / "dark.npy"
    np.save(path, ~blob)  # nonzero = unilluminated
    np.testing.assert_array_equal(choose_source_mask(model, (32, 64), threshold, str(path)), blob)
    with pytest.raises(ValueError, match="no trace_center"):
        choose_source_mask(_spectral_model(), (32, 64), threshold, mask_method="trace")


def test_dispersion_axis_follows_exposure_type():
    assert dispersion_axis(_spectral_model("NRC_TSGRISM")) == 1
    assert dispersion_axis(_spectral_model("MIR_LRS-SLITLESS")) == 0
