"""DQ bits tso-steps reads and sets: defined here once, from jwst's ``dqflags``."""

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

__all__ = [
    "DO_NOT_USE",
    "GROUP_DO_NOT_USE",
    "GROUP_JUMP_DET",
    "GROUP_SATURATED",
    "JUMP_DET",
    "OUTLIER",
    "SATURATED",
]

#: Pixel DQ: do not use this sample.
DO_NOT_USE = np.uint32(dqflags.pixel["DO_NOT_USE"])
#: Pixel DQ: saturated.
SATURATED = np.uint32(dqflags.pixel["SATURATED"])
#: Pixel DQ: outlier in time (tso_outlier, outlier_detection).
OUTLIER = np.uint32(dqflags.pixel["OUTLIER"])
#: Pixel DQ: jump detected.
JUMP_DET = np.uint32(dqflags.pixel["JUMP_DET"])
#: Group DQ (uint8): do not use this group.
GROUP_DO_NOT_USE = np.uint8(dqflags.group["DO_NOT_USE"])
#: Group DQ (uint8): saturated group.
GROUP_SATURATED = np.uint8(dqflags.group["SATURATED"])
#: Group DQ (uint8): jump detected in this group.
GROUP_JUMP_DET = np.uint8(dqflags.group["JUMP_DET"])
