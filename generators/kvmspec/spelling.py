"""Closest names: what a misspelt name was probably meant to be.

One matcher for every place that meets an unknown name: `kvmspec validate`
(a reference to a struct, flag set, capability, ioctl or field that the spec
does not define) and `kvmspec audit-docs` (a name in api.rst that no spec
item defines). Both print "did you mean ...?" from the same candidates, in
the same order.

Most misspellings of a KVM name reorder its words, add or drop one word, or
change one word (kvm_vmx_nested_stat_hdr for kvm_vmx_nested_state_hdr);
those are found through word-level indexes without comparing the name with
every candidate. Failing those, difflib compares it with the names that share
a word with it.
"""

from __future__ import annotations

from typing import Iterable

SUGGEST = 0.6      # similarity above which a name is suggested at all

# Words too common to say that two names are related.
COMMON_WORDS = frozenset({"", "KVM", "kvm", "CAP", "SET", "GET", "S390", "PPC", "ARM", "X86", "REG"})


def words(name: str) -> tuple[str, ...]:
    return tuple(name.split("_"))


def similarity(a: str, b: str) -> float:
    """How alike two names are, from 0 to 1.

    The same words in another order score 1; one word added or dropped 0.95;
    one word changed into a similar word (MSR and MSRS, EVENT and EVENTS) 0.9;
    anything else difflib's ratio of the two spellings.
    """
    import difflib   # here: kvmspec validate imports this module, and needs it only for a mistake

    wa, wb = words(a), words(b)
    if sorted(wa) == sorted(wb):
        return 1.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    if abs(len(wa) - len(wb)) == 1:
        longer, shorter = (wa, wb) if len(wa) > len(wb) else (wb, wa)
        if any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer))):
            return max(ratio, 0.95)
    if len(wa) == len(wb):
        differ = [i for i in range(len(wa)) if wa[i] != wb[i]]
        if len(differ) == 1 and difflib.SequenceMatcher(None, wa[differ[0]], wb[differ[0]]).ratio() >= 0.6:
            return max(ratio, 0.9)
    return ratio


class NameIndex:
    """A set of known names, indexed to answer `close(name)` quickly."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self._by_sorted: dict[tuple[str, ...], list[str]] = {}
        self._by_words: dict[tuple[str, ...], list[str]] = {}
        self._by_dropped: dict[tuple[str, ...], list[str]] = {}
        self._by_hole: dict[tuple[str, ...], list[str]] = {}
        self._by_word: dict[str, list[str]] = {}
        for n in self.names:
            w = words(n)
            self._by_sorted.setdefault(tuple(sorted(w)), []).append(n)
            self._by_words.setdefault(w, []).append(n)
            for i in range(len(w)):
                self._by_dropped.setdefault(w[:i] + w[i + 1:], []).append(n)
                self._by_hole.setdefault(w[:i] + ("*",) + w[i + 1:], []).append(n)
            for word in set(w) - COMMON_WORDS:
                self._by_word.setdefault(word, []).append(n)
        self._close: dict[str, list[tuple[float, str]]] = {}

    def close(self, name: str, limit: int = 3) -> list[tuple[float, str]]:
        """Up to `limit` known names that look like `name`, with their similarity, best first.

        Candidates are the names with the same words in another order
        (KVM_CAP_IRQCHIP_SPLIT: KVM_CAP_SPLIT_IRQCHIP), with one word more or
        less (KVM_EXIT_BUS_LOCK: KVM_EXIT_X86_BUS_LOCK) or one word changed
        (KVM_EXIT_DIRTY_LOG_FULL: KVM_EXIT_DIRTY_RING_FULL); failing those,
        difflib's closest among the names that share a word with it (or, in
        a small set, among all of them).
        """
        if name not in self._close:
            w = words(name)
            found: set[str] = set(self._by_sorted.get(tuple(sorted(w)), ()))
            found.update(self._by_dropped.get(w, ()))
            for i in range(len(w)):
                found.update(self._by_words.get(w[:i] + w[i + 1:], ()))
                found.update(self._by_hole.get(w[:i] + ("*",) + w[i + 1:], ()))
            found.discard(name)
            if not found:
                pool = sorted({n for word in set(w) - COMMON_WORDS for n in self._by_word.get(word, ())})
                if len(self.names) <= 64:   # a field of a record, an implementation: look at all
                    pool = self.names
                import difflib
                found.update(difflib.get_close_matches(name, pool, n=5, cutoff=SUGGEST))
            scored = sorted(((similarity(name, c), c) for c in found), key=lambda sc: (-sc[0], sc[1]))
            self._close[name] = [(score, c) for score, c in scored if score >= SUGGEST]
        return self._close[name][:limit]

    def suggestion(self, name: str) -> str:
        """'did you mean X?' (or 'X or Y'), or '' when no known name is close."""
        scored = self.close(name, limit=2)
        if not scored:
            return ""
        # a second name only when it is about as close as the first
        close = [c for score, c in scored if score >= scored[0][0] - 0.05]
        return f"did you mean {' or '.join(repr(c) for c in close)}?"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """NameIndex(known).suggestion(name), for a one-off question."""
    return NameIndex(known).suggestion(name)
