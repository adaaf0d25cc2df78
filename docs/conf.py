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
# furo: the page's own table of contents stays in view beside the text (its
# right-hand sidebar is sticky); docs/_static/kvmspec.css keeps it there on
# laptop-sized windows too and makes tables fit the text column.
html_theme = "furo"
# The API text's literal blocks are C declarations.
highlight_language = "c"
html_title = "kvmspec: the KVM userspace API"
html_static_path = ["_static"]
html_css_files = ["kvmspec.css"]
# reference/ is a link to ../generated/docs, the API reference that kvmspec
# generates; the kernel-format api.rst is offered there as a download.
