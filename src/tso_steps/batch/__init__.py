"""Many files, segments, visits and parameter sweeps on dask.distributed workers.

``run_batch`` (and ``tso-steps batch``) runs a step, pipeline or ASDF config over many
files: :mod:`~tso_steps.batch.plan` groups them into exposures from their headers,
:mod:`~tso_steps.batch.execute` runs tasks on a LocalCluster, a running scheduler, or
serially without dask, and :mod:`~tso_steps.batch.provenance` stamps, checks and publishes
the products. See ``docs/batch.rst``.
"""

from .execute import BatchProgress, DaskExecutor, SerialExecutor, make_executor
from .plan import Exposure, PlanError, Segment, group_exposures, read_segment
from .run import resolve_step, run_batch
from .segments import (
    HALO_RULES,
    SegmentInfo,
    halo_integrations,
    join_segments,
    segment_exposure,
    split_exposure,
)

__all__ = [
    "HALO_RULES",
    "BatchProgress",
    "DaskExecutor",
    "Exposure",
    "PlanError",
    "Segment",
    "SegmentInfo",
    "SerialExecutor",
    "group_exposures",
    "halo_integrations",
    "join_segments",
    "make_executor",
    "read_segment",
    "resolve_step",
    "run_batch",
    "segment_exposure",
    "split_exposure",
]
