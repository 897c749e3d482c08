import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels

from tso_steps.vectors import add_vectors, export_vectors, get_vectors, integration_numbers


def cube_with_int_times(nints=5, start=1):
    model = datamodels.CubeModel((nints, 4, 6))
    model.meta.exposure.type = "NRC_TSGRISM"
    model.meta.exposure.integration_start = start
    dtype = model.int_times.dtype if model.int_times is not None else None
    numbers = np.arange(start, start + nints)
    rows = np.zeros(nints, dtype=dtype or datamodels.CubeModel().get_dtype("int_times"))
    rows["integration_number"] = numbers
    rows["int_mid_MJD_UTC"] = 60000.0 + numbers / 1440.0
    rows["int_mid_BJD_TDB"] = 60000.001 + numbers / 1440.0
    model.int_times = rows
    return model


def test_columns_are_added_and_kept():
    model = cube_with_int_times()
    add_vectors(model, {"trace_position": np.linspace(30, 31, 5)})
    add_vectors(model, {"trace_width": np.full(5, 1.7)})
    table = get_vectors(model)
    assert table.colnames == ["integration_number", "trace_position", "trace_width"]
    np.testing.assert_array_equal(table["integration_number"], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(table["trace_position"][-1], 31.0)
    # replacing a column keeps the others
    add_vectors(model, {"trace_position": np.zeros(5)})
    assert get_vectors(model)["trace_width"][0] == pytest.approx(1.7)


def test_segment_integration_numbers_come_from_int_times():
    model = cube_with_int_times(nints=3, start=101)
    np.testing.assert_array_equal(integration_numbers(model), [101, 102, 103])
    add_vectors(model, {"outlier_fraction": [0, 2, 1]})
    np.testing.assert_array_equal(get_vectors(model)["integration_number"], [101, 102, 103])


def test_wrong_length_is_rejected():
    model = cube_with_int_times()
    with pytest.raises(ValueError, match="one per integration"):
        add_vectors(model, {"x": np.zeros(4)})
    with pytest.raises(ValueError, match="managed"):
        add_vectors(model, {"integration_number": np.zeros(5)})


def test_vectors_survive_save_and_load(tmp_path):
    model = cube_with_int_times()
    add_vectors(model, {"centroid_x": np.arange(5) * 0.01})
    path = tmp_path / "v_rateints.fits"
    model.save(path)
    with datamodels.open(path) as reloaded:
        table = get_vectors(reloaded)
    np.testing.assert_allclose(table["centroid_x"], np.arange(5) * 0.01)


def test_export_is_readable_by_astropy_with_times(tmp_path):
    model = cube_with_int_times()
    add_vectors(model, {"shift_dispersion": np.array([0.0, 0.1, -0.1, 0.05, 0.0])})
    path = tmp_path / "x_tsovectors.ecsv"
    export_vectors(model, path)
    table = Table.read(path)
    assert table["int_mid_BJD_TDB"].unit == "d"
    np.testing.assert_allclose(table["int_mid_BJD_TDB"], model.int_times["int_mid_BJD_TDB"])
    np.testing.assert_allclose(table["shift_dispersion"][1], 0.1)
    assert table.meta["exposure_type"] == "NRC_TSGRISM"


def test_export_without_vectors_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no tso_vectors"):
        export_vectors(cube_with_int_times(), tmp_path / "x.ecsv")


def test_every_column_is_documented_with_its_unit():
    from pathlib import Path

    from tso_steps.vectors import DATA_UNIT, VECTOR_COLUMNS

    lines = (Path(__file__).parents[1] / "docs" / "vectors.rst").read_text().splitlines()
    for name, (step, unit, _) in VECTOR_COLUMNS.items():
        row = next((line for line in lines if line.split()[1:2] == [f"``{name}``"]), None)
        assert row is not None, f"docs/vectors.rst has no table row for {name}"
        assert row.split()[0] == step
        expected = "data unit" if unit == DATA_UNIT else (unit or "-")
        assert row.split("``")[2].strip().startswith(expected), row


def test_strict_mode_refuses_an_undocumented_column():
    import tso_steps.vectors as vectors

    model = cube_with_int_times()
    assert vectors.STRICT_COLUMNS  # the test suite runs strict (tests/conftest.py)
    with pytest.raises(ValueError, match="VECTOR_COLUMNS"):
        add_vectors(model, {"made_up_column": np.zeros(5)})


def test_ecsv_carries_units_and_descriptions(tmp_path):
    from astropy.table import Table

    from tso_steps.vectors import export_vectors

    model = cube_with_int_times()
    model.meta.bunit_data = "DN/s"
    add_vectors(
        model,
        {
            "trace_position": np.zeros(5),
            "outlier_fraction": np.full(5, 1e-4),
            "background_level": np.ones(5),
            "n_jumps": np.arange(5),
        },
    )
    export_vectors(model, tmp_path / "v.ecsv")
    table = Table.read(tmp_path / "v.ecsv")
    assert str(table["trace_position"].unit) == "pix"
    assert str(table["background_level"].unit) == "DN / s"
    assert str(table["n_jumps"].unit) == "ct"
    assert table["outlier_fraction"].unit is None  # a pure number
    assert "fraction" in table["outlier_fraction"].description
    assert str(table["int_mid_BJD_TDB"].unit) == "d"
