"""Shared test set-up: offline, no CRDS server, validation warnings are errors."""

import os

import pytest

import tso_steps.vectors
from tso_steps.offline import make_offline_crds_cache

# Tests never reach a CRDS server: no parameter reference look-ups, and a throwaway cache.
os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
os.environ.pop("CRDS_SERVER_URL", None)

# A step that writes a tso_vectors column missing from VECTOR_COLUMNS (and so from
# docs/vectors.rst) fails its tests.
tso_steps.vectors.STRICT_COLUMNS = True


@pytest.fixture(scope="session", autouse=True)
def offline_crds_cache(tmp_path_factory):
    """A throwaway CRDS cache holding only the server config that jwst reads at the end of
    a pipeline or of a step given ``override_*`` reference files."""
    root = make_offline_crds_cache(tmp_path_factory.mktemp("crds_cache"))
    previous = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("CRDS_PATH", None)
    else:
        os.environ["CRDS_PATH"] = previous


@pytest.fixture(scope="session")
def fault_products():
    """The small simulated products of the fault tests (``fault_matrix.make_products``).

    Made once per session; tests take copies (``fault_matrix.step_input``) and never change
    these.
    """
    from fault_matrix import make_products

    return make_products()


#: Segments of the batch tests' exposure (40 integrations), and their file names.
SEGMENT_COUNTS = (14, 13, 13)
SEGMENT_NAME = "jw09999001001_01101_00001-seg{segment:03d}_nrcalong_{product}.fits"


@pytest.fixture(scope="session")
def segmented_exposure(tmp_path_factory):
    """One small simulated exposure, written whole and as three segments (ramp and rateints).

    ``{"uncal": (whole, [seg1, seg2, seg3]), "rateints": (...), "references": {...}}``, the
    references being the GAIN/READNOISE overrides ramp_fit needs offline.
    """
    from tso_steps.batch.segments import segment_exposure
    from tso_steps.simulate import simulate_tso
    from tso_steps.simulate.references import write_noise_references

    root = tmp_path_factory.mktemp("exposure")
    sim = simulate_tso(
        "NRC_TSGRISM", nints=sum(SEGMENT_COUNTS), ngroups=4, seed=31, cosmic_rays=2e-3,
        products=("ramp", "rateints"), subarray="SUBGRISM64", crop=(32, 128),
    )  # fmt: skip
    files = {"references": write_noise_references(sim.ramp, sim.truth, root / "references")}
    for product, model in (("uncal", sim.ramp), ("rateints", sim.rateints)):
        whole = root / f"jw09999001001_01101_00001_nrcalong_{product}.fits"
        model.meta.filename = whole.name
        model.save(whole)
        pattern = SEGMENT_NAME.replace("{product}", product)
        segments = []
        for piece in segment_exposure(model, SEGMENT_COUNTS, pattern):
            path = root / piece.meta.filename
            piece.save(path)
            segments.append(str(path))
        files[product] = (str(whole), segments)
    return files


@pytest.fixture(scope="session")
def dask_scheduler():
    """A LocalCluster of 2 single-threaded workers over loopback TCP."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    )
    yield cluster.scheduler_address
    cluster.close()
