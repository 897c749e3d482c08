"""Sphinx configuration for tso-steps."""

import importlib.metadata

project = "tso-steps"
author = "tso-steps developers"
copyright = "2026, tso-steps developers"
release = importlib.metadata.version("tso-steps")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"
nitpicky = False
html_theme = "alabaster"
suppress_warnings = ["myst.header"]
