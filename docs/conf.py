"""Sphinx configuration for the kvmspec documentation site."""

project = "kvmspec"
author = "the kvmspec developers"
copyright = "the kvmspec developers"

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))
extensions: list[str] = ["kvmspec_docs"]
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "kvmspec: the KVM userspace API"
html_static_path: list[str] = []
# The generated api.rst is included from ../generated; Sphinx must not treat
# the inclusion target as a document of its own.
suppress_warnings: list[str] = []
