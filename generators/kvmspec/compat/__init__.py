"""The ABI guard: compatibility rules over two revisions of the spec, over its release history,
and the invariants one revision must keep (see docs/compat-rules.rst).

- rules: the rule table, findings, and `compare(old, new)` for two revisions;
- view: one model seen at one release (what the rules over meaning compare);
- meaning: the rules over meaning (saved state, validation, capabilities, ioctls, validity);
- history: `kvmspec compat --history`, the rules over consecutive releases;
- invariants: what `kvmspec validate` checks within one revision;
- revisions: git revisions of spec/ written out for comparison.

The names below are imported from their modules when first asked for: the
model checks of every `kvmspec validate` and `generate` use the invariants
alone, and should not load git and tar handling (revisions) with them.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"RULES": "rules", "Finding": "rules", "Rule": "rules", "compare": "rules",
          "RevisionError": "revisions", "extract_revision": "revisions", "git_root": "revisions"}

__all__ = ["RULES", "Finding", "Rule", "compare", "RevisionError", "extract_revision", "git_root"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
