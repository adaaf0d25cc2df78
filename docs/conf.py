"""Sphinx configuration for the kvmspec documentation site."""

project = "kvmspec"
author = "the kvmspec developers"
copyright = "the kvmspec developers"

extensions: list[str] = []
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "kvmspec: the KVM userspace API"
html_static_path: list[str] = []
# The generated api.rst is included from ../generated; Sphinx must not treat
# the inclusion target as a document of its own.
suppress_warnings: list[str] = []
