"""The ABI guard: compatibility rules over two revisions of the spec, over its release history,
and the invariants one revision must keep (see docs/compat-rules.rst).

- rules: the rule table, findings, and `compare(old, new)` for two revisions;
- view: one model seen at one release (what the rules over meaning compare);
- meaning: the rules over meaning (saved state, validation, capabilities, ioctls, validity);
- history: `kvmspec compat --history`, the rules over consecutive releases;
- invariants: what `kvmspec validate` checks within one revision;
- revisions: git revisions of spec/ written out for comparison.
"""

from .revisions import RevisionError, extract_revision, git_root
from .rules import RULES, Finding, Rule, compare

__all__ = ["RULES", "Finding", "Rule", "compare", "RevisionError", "extract_revision", "git_root"]
