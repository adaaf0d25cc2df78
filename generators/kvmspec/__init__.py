"""kvmspec: the Linux KVM userspace API written once, as data.

load.py reads YAML with positions, schema.py checks it against the spec
language, build.py resolves it into the frozen model (model.py, layouts from
layout.py, expressions from expr.py), checks.py judges the model, emit/
renders outputs and output.py writes generated/ atomically.
"""

__version__ = "0.1.0"
