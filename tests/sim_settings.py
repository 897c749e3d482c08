"""Simulator settings shared by the simulator tests."""

#: Every effect off: a noiseless, static source (tests switch on what they check).
QUIET = dict(
    transit=False,
    jitter=False,
    cosmic_rays=False,
    one_over_f=False,
    background=False,
    photon_noise=False,
    read_noise=False,
)
