"""Running jwst offline: a throwaway CRDS cache and the environment that uses it.

tso-steps needs no reference files, but jwst's own steps and pipelines ask CRDS for the
context they ran with (``crds_client.get_context_used``) whenever a pipeline runs or a step
is given ``override_*`` reference files.  Without a CRDS server that call needs a cache
holding ``config/jwst/server_config``.  Tests, benchmarks and the demo build one here.

``Step.call`` and ``strun`` also look up a CRDS *parameter* reference first; with no server and
no cache CRDS ends the Python process (``SystemExit``) instead of raising.  Importing
``tso_steps`` therefore sets ``STPIPE_DISABLE_CRDS_STEPPARS=true`` when no CRDS server is
configured (no ``CRDS_SERVER_URL``) and no usable cache is at hand (``CRDS_PATH`` unset, or
holding no ``mappings/jwst/*.pmap``), and logs that it did
(:func:`default_disable_crds_steppars`).  A value the user set is never changed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["default_disable_crds_steppars", "make_offline_crds_cache", "offline_environment"]

log = logging.getLogger("stpipe.tso_steps.offline")

#: Environment variable stpipe reads; only the exact strings ``true``/``yes`` disable the look-up.
STEPPARS_VARIABLE = "STPIPE_DISABLE_CRDS_STEPPARS"

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


def _usable_crds_cache(path):
    """Whether ``path`` is a CRDS cache holding JWST context mappings."""
    if not path:
        return False
    mappings = Path(path) / "mappings" / "jwst"
    return mappings.is_dir() and any(mappings.glob("*.pmap"))


def default_disable_crds_steppars(environ=None):
    """Disable CRDS parameter-reference look-ups when CRDS cannot answer them.

    Sets ``STPIPE_DISABLE_CRDS_STEPPARS=true`` in ``environ`` when it is unset, no
    ``CRDS_SERVER_URL`` is configured and ``CRDS_PATH`` names no usable cache (one with
    ``mappings/jwst/*.pmap``).  Without it ``Step.call`` and ``strun`` end the process with
    CRDS' ``SystemExit(-1)``.  Called when ``tso_steps`` is imported.

    Parameters
    ----------
    environ : mutable mapping, optional
        Environment to inspect and change (default ``os.environ``).

    Returns
    -------
    bool
        True when the variable was set here.
    """
    environ = os.environ if environ is None else environ
    if STEPPARS_VARIABLE in environ:
        return False
    if environ.get("CRDS_SERVER_URL") or _usable_crds_cache(environ.get("CRDS_PATH")):
        return False
    environ[STEPPARS_VARIABLE] = "true"
    log.info(
        "No CRDS server (CRDS_SERVER_URL) and no CRDS cache (CRDS_PATH) configured: set "
        "%s=true so steps do not look up CRDS parameter references (set it to 'false' "
        "before importing tso_steps to keep the look-up)",
        STEPPARS_VARIABLE,
    )
    return True
