"""Running jwst offline: a throwaway CRDS cache and the environment that uses it.

tso-steps needs no reference files, but jwst's own steps and pipelines ask CRDS for the
context they ran with (``crds_client.get_context_used``) whenever a pipeline runs or a step
is given ``override_*`` reference files.  Without a CRDS server that call needs a cache
holding ``config/jwst/server_config``.  Tests, benchmarks and the demo build one here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_offline_crds_cache", "offline_environment"]

_SERVER_CONFIG = (
    "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', "
    "'edit_context': 'jwst_0000.pmap', 'bad_files_list': [], 'bad_files': '', "
    "'force_remote_mode': False, 'last_synced': 'never'}\n"
)


def make_offline_crds_cache(root):
    """Create (or reuse) a minimal CRDS cache folder.

    Parameters
    ----------
    root : str or `~pathlib.Path`
        Folder of the cache; created if needed.

    Returns
    -------
    `~pathlib.Path`
        The cache folder, to be used as ``CRDS_PATH``.
    """
    root = Path(root)
    config = root / "config" / "jwst"
    config.mkdir(parents=True, exist_ok=True)
    (config / "server_config").write_text(_SERVER_CONFIG)
    return root


def offline_environment(root, base=None):
    """Environment variables for running jwst steps offline.

    Parameters
    ----------
    root : str or `~pathlib.Path`
        Folder for the CRDS cache (see :func:`make_offline_crds_cache`).
    base : mapping, optional
        Environment to start from (default ``os.environ``).

    Returns
    -------
    dict
        ``base`` with ``CRDS_PATH`` set to the cache, ``STPIPE_DISABLE_CRDS_STEPPARS=true``
        and no ``CRDS_SERVER_URL``.
    """
    env = dict(os.environ if base is None else base)
    env.pop("CRDS_SERVER_URL", None)
    env["CRDS_PATH"] = str(make_offline_crds_cache(root))
    env["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
    return env
