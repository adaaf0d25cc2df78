"""kvmspec: the Linux KVM userspace API written once, as data.

load.py reads YAML with positions, schema.py checks it against the spec
language, build/ resolves it into the frozen model (model.py, layouts from
layout.py, expressions from expr.py; build/ is split by concern: reading,
names and architectures, evaluation, outlines, values, records, ioctls),
checks.py judges the model, view.py gives the model at one architecture and
release, emit/ renders outputs and output.py writes generated/ atomically.
"""

__version__ = "0.1.0"

from . import timeline  # noqa: E402,F401  (its clock starts with the package)
