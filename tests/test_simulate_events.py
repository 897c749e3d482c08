"""The simulator's inter-pixel capacitance, snowballs and showers, held to their own truth."""

import warnings

import numpy as np
import pytest

from tso_steps.scoring import cosmic_ray_rate_effect, score_jump_flags
from tso_steps.simulate import CosmicRays, Ipc, simulate_tso
from tso_steps.simulate.events import ipc_kernel

NOISELESS = dict(
    jitter=False,
    transit=False,
    photon_noise=False,
    read_noise=False,
    one_over_f=False,
)


def _simulate(mode="NRC_TSGRISM", crop=(48, 96), **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=6, ngroups=4, crop=crop, seed=5, **kwargs)


def _events(**kwargs):
    return CosmicRays(rate=3e-2, snowball_rate=3e-3, shower_rate=2e-3, **kwargs)


@pytest.mark.parametrize("ipc", [False, Ipc(0.01, 0.001)])
def test_cosmic_ray_table_is_exactly_what_the_hits_put_into_the_data(ipc):
    sim = _simulate(cosmic_rays=_events(), ipc=ipc, **NOISELESS)
    table = sim.truth.cosmic_rays
    kinds = {k: int(np.sum(table["kind"] == k)) for k in ("hit", "snowball", "shower", "ipc")}
    assert kinds["hit"] > 20 and kinds["snowball"] > 200 and kinds["shower"] > 200
    assert (kinds["ipc"] > 1000) == bool(ipc)
    effect = cosmic_ray_rate_effect(sim.rateints.data.shape, table)
    expected = np.stack([sim.truth.rate_image(i) for i in range(6)]) + effect
    # float32 rounding of rates up to 5e5 DN/s
    np.testing.assert_allclose(sim.rateints.data, expected, rtol=2e-6, atol=0.2)


def test_ipc_leaks_alpha_of_a_hit_into_each_side_neighbour():
    events = [(2, 2, 20, 40, 4000.0)]  # integration, group, y, x, DN
    sim = _simulate(cosmic_rays=CosmicRays(rate=0.0, events=events), ipc=0.008, **NOISELESS)
    plain = _simulate(cosmic_rays=False, ipc=0.008, **NOISELESS)
    step = (sim.ramp.data - plain.ramp.data)[2, -1].astype(float)
    kernel = ipc_kernel(Ipc(0.008))
    np.testing.assert_allclose(step[19:22, 39:42], 4000.0 * kernel, rtol=1e-3)
    assert abs(step.sum() - 4000.0) < 0.5  # the charge is conserved
    assert kernel[0, 1] == pytest.approx(0.008) and kernel.sum() == pytest.approx(1.0)


def test_ipc_blurs_the_source_but_keeps_its_flux():
    flat = _simulate(cosmic_rays=False, **NOISELESS).truth
    coupled = _simulate(cosmic_rays=False, ipc=Ipc(0.02, 0.002), **NOISELESS).truth
    a, b = flat.source_image(0), coupled.source_image(0)
    assert abs(b.sum() / a.sum() - 1) < 2e-3  # only the array edges lose or gain
    # the core spreads into its neighbours, by less than the 8.8 % the kernel moves off a
    # single lit pixel (the trace core is a few pixels wide): measured 2.3 %
    assert 0.01 < 1 - b.max() / a.max() < 0.088


def test_snowballs_have_a_flat_core_inside_a_fainter_halo():
    sim = _simulate(cosmic_rays=CosmicRays(rate=0.0, snowball_rate=3e-3), **NOISELESS)
    table = sim.truth.cosmic_rays
    balls = table[table["kind"] == "snowball"]
    assert len(balls) > 100
    for key in set(zip(balls["integration"], balls["time"], strict=True)):
        one = balls[(balls["integration"] == key[0]) & (balls["time"] == key[1])]
        amplitude = np.asarray(one["amplitude"])
        core = amplitude == amplitude.max()
        assert 5e3 <= amplitude.max() <= 4e4
        halo = amplitude[~core]
        if halo.size:
            assert halo.max() <= 0.03 * amplitude.max() * (1 + 1e-9)


def test_jump_scoring_sums_the_rows_of_one_sample():
    sim = _simulate(cosmic_rays=_events(), ipc=True, **NOISELESS)
    table = sim.truth.cosmic_rays
    flags = np.zeros(sim.ramp.data.shape, np.uint8)
    result = score_jump_flags(flags, table, np.ones(sim.ramp.data.shape[-2:]))
    # nothing flagged: recall 0 of the hits above 6 DN, every group difference unflagged
    assert result["n_hits"] > 500 and result["recall"] == 0 and result["flagged"] == 0


def test_defaults_leave_every_existing_stream_unchanged():
    kwargs = dict(cosmic_rays=CosmicRays(rate=3e-2))
    plain = _simulate(**kwargs)
    again = _simulate(ipc=False, **kwargs)
    np.testing.assert_array_equal(plain.ramp.data, again.ramp.data)
    assert set(plain.truth.cosmic_rays["kind"]) == {"hit"}
