"""Shared test set-up: offline, no CRDS server, validation warnings are errors."""

import os

import pytest

# Tests never reach a CRDS server: no parameter reference look-ups, and a throwaway cache.
os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
os.environ.pop("CRDS_SERVER_URL", None)


@pytest.fixture(scope="session", autouse=True)
def offline_crds_cache(tmp_path_factory):
    """A throwaway CRDS cache holding only the server config that jwst reads at the end of
    a pipeline or of a step given ``override_*`` reference files."""
    root = tmp_path_factory.mktemp("crds_cache")
    config_dir = root / "config" / "jwst"
    config_dir.mkdir(parents=True)
    (config_dir / "server_config").write_text(
        "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', "
        "'edit_context': 'jwst_0000.pmap', 'bad_files_list': [], 'bad_files': '', "
        "'force_remote_mode': False, 'last_synced': 'never'}\n"
    )
    previous = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("CRDS_PATH", None)
    else:
        os.environ["CRDS_PATH"] = previous
