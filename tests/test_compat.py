"""`kvmspec compat`: every rule on a pair of spec revisions modelled on a real KVM change.

Each case starts from a copy of the current spec ("old"), applies a change
("new") and checks the findings: the rule, where, and the words a KVM
reviewer needs (what breaks, for whom, what to do).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import REPO, Scratch, run_kvmspec
from kvmspec.build import load_model
from kvmspec.compat import RULES, compare

NESTED = "spec/x86/nested-state.yaml"
CAPS = "spec/common/capabilities.yaml"
BASE = "spec/common/base.yaml"


@pytest.fixture
def pair(tmp_path):
    old = Scratch(tmp_path / "old")
    new = Scratch(tmp_path / "new")
    return old, new


def findings(old: Scratch, new: Scratch):
    return compare(load_model(old.root, invariants=False), load_model(new.root, invariants=False))


def rules(found) -> list[str]:
    return [f.rule.id for f in found]


def add_items(scratch: Scratch, rel: str, text: str) -> None:
    scratch.write(rel, scratch.read(rel).rstrip("\n") + "\n" + text)


# ------------------------------------------------------------------ the gPAT series (March 2026)

GPAT_FLAG = """      - name: KVM_STATE_NESTED_GPAT_VALID
        value: 0x00000200
        since: "7.1"
        implementations: [svm]
        doc: The header carries the nested guest's PAT.
"""
GIF_DOC_END = "          events are held until the guest hypervisor executes STGI.\n"
SVM_EMITS = "          - KVM_STATE_NESTED_GIF_SET\n      - field: hdr.vmx.smm.flags"


def add_gpat_flag(s: Scratch, requires: str | None = None) -> None:
    s.replace(NESTED, GIF_DOC_END, GIF_DOC_END + GPAT_FLAG)
    if requires is None:
        s.replace(NESTED, SVM_EMITS, "          - KVM_STATE_NESTED_GIF_SET\n"
                                     "          - KVM_STATE_NESTED_GPAT_VALID\n"
                                     "      - field: hdr.vmx.smm.flags")
    else:
        s.replace(NESTED, SVM_EMITS, "          - KVM_STATE_NESTED_GIF_SET\n"
                                     "      - field: flags\n"
                                     "        implementations: [svm]\n"
                                     f"        requires: {requires}\n"
                                     "        values:\n"
                                     "          - KVM_STATE_NESTED_GPAT_VALID\n"
                                     "      - field: hdr.vmx.smm.flags")


GPAT_CAP = """
  - capability: KVM_CAP_NESTED_GPAT
    header: linux
    value: 252
    since: "7.3"
    check: [system, vm]
    answer: {kind: boolean, doc: Non-zero when the guest PAT can be saved.}
    enable:
      scope: vm
      args:
        - doc: Non-zero to save and restore the nested guest PAT.
      doc: KVM_GET_NESTED_STATE includes the guest PAT and says so with KVM_STATE_NESTED_GPAT_VALID.
    doc: Opt-in saving of the nested guest PAT.
"""


def test_gpat_as_posted_cannot_be_restored_on_older_kernels(pair):
    """Sean's proposal: a new bit in kvm_nested_state.flags, emitted by SVM unconditionally."""
    old, new = pair
    add_gpat_flag(new)
    found = findings(old, new)
    assert rules(found) == ["unrestorable-state"]
    f = found[0]
    assert f.level == "error"
    assert f.mark.path == NESTED
    assert f.mark.line == new.line_of(NESTED, "- field: flags\n        implementations: [svm]\n        since: \"5.8\"\n"
                                              "        values:\n"
                                              "          - KVM_STATE_NESTED_GUEST_MODE\n"
                                              "          - KVM_STATE_NESTED_RUN_PENDING\n"
                                              "          - KVM_STATE_NESTED_GIF_SET")
    text = str(f)
    assert "KVM_GET_NESTED_STATE now emits KVM_STATE_NESTED_GPAT_VALID in flags on svm" in text
    assert "KVM_SET_NESTED_STATE on older kernels rejects it as unknown with EINVAL" in text
    assert "state saved on a new kernel cannot be restored on an old one" in text
    assert "not affected: vmx (does not emit it)" in text
    assert "KVM_ENABLE_CAP" in f.remedy and "KVM_CAP_EXCEPTION_PAYLOAD" in f.remedy


def test_gpat_behind_an_opt_in_capability_passes(pair):
    """The remedy KVM asked for: emit the bit only after KVM_ENABLE_CAP."""
    old, new = pair
    add_gpat_flag(new, requires="KVM_CAP_NESTED_GPAT")
    add_items(new, NESTED, GPAT_CAP)
    assert findings(old, new) == []


def without_merged_gpat(s: Scratch) -> None:
    """The spec before the gPAT series was merged (7.2 took a different shape: no flags word)."""
    text = s.read(NESTED)
    start = text.index("      - name: gpat\n")
    end = text.index("  - struct: kvm_nested_state\n")
    s.write(NESTED, text[:start] + "\n" + text[end:])


def test_gpat_first_posting_puts_a_flag_into_unchecked_header_bytes(pair):
    """v5 added flags and gpat to the SVM header, in bytes that KVM_SET_NESTED_STATE never checked."""
    old, new = pair
    without_merged_gpat(old)
    without_merged_gpat(new)
    new.replace(NESTED, "      - name: vmcb_pa\n        type: __u64\n        doc: Guest physical address of the guest hypervisor's VMCB.\n",
                "      - name: vmcb_pa\n        type: __u64\n        doc: Guest physical address of the guest hypervisor's VMCB.\n"
                "      - name: flags\n        type: __u64\n        since: \"7.1\"\n        doc: Valid bits.\n"
                "      - name: gpat\n        type: __u64\n        since: \"7.1\"\n        doc: The guest PAT.\n")
    found = findings(old, new)
    assert rules(found) == ["reserved-field-reused", "reserved-field-reused"]
    text = str(found[0])
    assert "new field kvm_nested_state.hdr.svm.flags uses bytes that were reserved (hdr.pad)" in text
    assert "did not check for zero in KVM_SET_NESTED_STATE" in text
    assert "old userspace may have left anything there" in text


# ------------------------------------------------------------------ numbers and layouts


def test_growing_the_data_area_would_renumber_the_ioctls(pair):
    """5.2 declared kvm_nested_state.data with zero length so the ioctl numbers stayed; a sized one breaks."""
    old, new = pair
    new.replace(NESTED, "              type: struct kvm_vmx_nested_state_data\n              array: 0",
                "              type: struct kvm_vmx_nested_state_data\n              array: 1")
    found = findings(old, new)
    assert rules(found) == ["layout-changed"]
    text = str(found[0])
    assert "struct kvm_nested_state changed layout (size 128 -> 8320 on x86_64" in text
    assert "KVM_GET_NESTED_STATE (0xc080aebe -> 0xe080aebe)" in text
    assert "KVM_SET_NESTED_STATE (0x4080aebf -> 0x6080aebf)" in text
    # the ioctls are not reported a second time as changed values
    assert all(f.rule.id != "value-changed" for f in found)


def test_carving_a_field_out_of_checked_padding_is_allowed(pair):
    """The way 5.8 added flags and the timer deadline: inside the fixed-size header union."""
    old, new = pair
    new.replace(NESTED, "              since: \"5.2\"\n              type: __u8\n              array: 120\n",
                "              since: \"4.19\"\n              type: __u8\n              array: 120\n")
    assert findings(old, new) == []


def test_changed_constant(pair):
    old, new = pair
    new.replace(NESTED, "value: 0x00000100", "value: 0x00000400")
    found = findings(old, new)
    assert "value-changed" in rules(found)
    text = next(str(f) for f in found if f.rule.id == "value-changed")
    assert "value KVM_STATE_NESTED_GIF_SET changed value (0x100 -> 0x400 on x86_64, 0x100 -> 0x400 on i386)" in text


def remove_item(s: Scratch, rel: str, header: str) -> None:
    """Delete the item that starts with `header` (up to the next item)."""
    text = s.read(rel)
    start = text.index(header)
    end = text.find("\n  - ", start + len(header))
    s.write(rel, text[:start] + (text[end + 1:] if end >= 0 else ""))


def test_removal_without_and_with_deprecation(pair):
    old, new = pair
    remove_item(new, CAPS, "  - capability: KVM_CAP_HLT\n")
    found = findings(old, new)
    assert rules(found) == ["removed-without-deprecation"]
    assert "capability KVM_CAP_HLT is no longer in the spec without having been deprecated" in str(found[0])
    # As with device assignment in 4.12: deprecate first, then it may go.
    old.replace(CAPS, "  - capability: KVM_CAP_HLT\n", "  - capability: KVM_CAP_HLT\n    deprecated:\n"
                                                        "      since: \"7.0\"\n      doc: Never meant anything.\n")
    assert findings(old, new) == []


def test_capability_number_reused_for_a_new_meaning(pair):
    """Manual dirty-log protection changed meaning in 5.3 and got a new number (168), not the old one (166)."""
    old, new = pair
    remove_item(new, CAPS, "  - capability: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT\n")
    new.replace(CAPS, "  - capability: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2\n    value: 168\n",
                "  - capability: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2\n    value: 166\n")
    found = findings(old, new)
    assert "meaning-reused" in rules(found)
    assert "capability number 166 was KVM_CAP_MANUAL_DIRTY_LOG_PROTECT and is now " \
           "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2" in str(next(f for f in found if f.rule.id == "meaning-reused"))
    # What KVM did (and the spec says): 166 keeps its name, the new meaning is 168.
    assert findings(old, old) == []


def test_flag_bit_reused(pair):
    old, new = pair
    new.replace(NESTED, "      - name: KVM_STATE_NESTED_MTF_PENDING", "      - name: KVM_STATE_NESTED_TIMER_PENDING")
    new.replace(NESTED, "          - KVM_STATE_NESTED_MTF_PENDING\n", "          - KVM_STATE_NESTED_TIMER_PENDING\n")
    found = findings(old, new)
    assert set(rules(found)) == {"meaning-reused", "removed-without-deprecation"}
    assert "bit 0x8 of kvm_nested_state_flags was KVM_STATE_NESTED_MTF_PENDING and is now " \
           "KVM_STATE_NESTED_TIMER_PENDING" in str(next(f for f in found if f.rule.id == "meaning-reused"))


# ------------------------------------------------------------------ discoverability and opt-in

MSRS = "spec/x86/msrs.yaml"


def test_new_ioctl_needs_a_capability(pair):
    """KVM_GET_MSR_FEATURE_INDEX_LIST arrived with KVM_CAP_GET_MSR_FEATURES (4.17)."""
    old, new = pair
    remove_item(old, MSRS, "  - ioctl: KVM_GET_MSR_FEATURE_INDEX_LIST\n")
    layout = "spec/documents/api-6-1.yaml"   # the old api.rst had no section for it either
    old.write(layout, old.read(layout).replace(", KVM_GET_MSR_FEATURE_INDEX_LIST", "")
              .replace("KVM_GET_MSR_FEATURE_INDEX_LIST, ", ""))
    assert findings(old, new) == []          # as it was merged: with its capability
    text = new.read(MSRS)
    start = text.index("  - ioctl: KVM_GET_MSR_FEATURE_INDEX_LIST\n")
    cap = text.index("    capability: KVM_CAP_GET_MSR_FEATURES\n", start)
    new.write(MSRS, text[:cap] + text[cap + len("    capability: KVM_CAP_GET_MSR_FEATURES\n"):])
    found = findings(old, new)
    assert rules(found) == ["undiscoverable-uapi"]
    assert "new ioctl KVM_GET_MSR_FEATURE_INDEX_LIST is not tied to a capability" in str(found[0])


def test_capability_that_nobody_can_check(pair):
    old, new = pair
    add_items(new, CAPS, """
  - capability: KVM_CAP_EXAMPLE
    value: 300
    since: "7.1"
    check: []
    answer: {kind: boolean}
    doc: Cannot be asked for.
""")
    found = findings(old, new)
    assert rules(found) == ["undiscoverable-uapi"]


RUN = "spec/common/run.yaml"


def test_new_exit_reason_must_be_opt_in(pair):
    """User-space MSR exits (5.10) only happen after KVM_CAP_X86_USER_SPACE_MSR is enabled."""
    old, new = pair
    remove_item(old, RUN, "  - exit: KVM_EXIT_X86_RDMSR\n")
    assert findings(old, new) == []          # as merged: behind the capability
    new.replace(RUN, "    requires: KVM_CAP_X86_USER_SPACE_MSR\n    since: \"5.10\"\n    doc: |\n      The guest read",
                "    since: \"5.10\"\n    doc: |\n      The guest read")
    found = findings(old, new)
    assert rules(found) == ["not-opt-in"]
    assert found[0].level == "warning"
    assert "new exit reason KVM_EXIT_X86_RDMSR is not behind an opt-in capability" in str(found[0])


def test_new_struct_must_be_64_bit_clean(pair):
    """The SEV command structs kept implicit padding; a new struct may not claim their exemption."""
    old, new = pair
    add_items(new, NESTED, """
  - struct: kvm_example_launch
    since: "7.4"
    doc: An example with the SEV structs' layout.
    abi_exemption:
      reason: Copied from the SEV command structs.
    fields:
      - {name: uaddr, type: __u64}
      - {name: len, type: __u32}
""")
    found = findings(old, new)
    assert rules(found) == ["not-64-bit-clean"]
    assert "new struct kvm_example_launch claims an abi_exemption" in str(found[0])


def test_a_shipped_struct_newly_described_keeps_its_exemption(pair):
    """A struct the kernel shipped long ago (powerpc's kvm_create_spapr_tce of 3.1, with tail
    padding) that the spec describes only now is not new uapi: its exemption stands."""
    old, new = pair
    add_items(new, NESTED, """
  - struct: kvm_example_shipped
    since: "3.1"
    doc: An example of an old struct with tail padding.
    abi_exemption:
      reason: Predates the rule; its tail padding is part of the ABI.
    fields:
      - {name: liobn, type: __u64}
      - {name: window_size, type: __u32}
""")
    assert "not-64-bit-clean" not in rules(findings(old, new))


# ------------------------------------------------------------------ the command


def test_current_spec_against_itself_has_no_findings(pair):
    old, new = pair
    assert findings(old, new) == []


def test_every_rule_has_a_rationale_and_a_kvm_example():
    assert len(RULES) >= 9
    for rule in RULES.values():
        assert rule.severity in ("error", "warning")
        assert len(rule.rationale) > 80 and len(rule.example) > 40, rule.id


def test_cli_reports_and_exits_1_on_errors(pair):
    old, new = pair
    add_gpat_flag(new)
    result = run_kvmspec("--root", str(new.root), "compat", str(old.root), str(new.root))
    assert result.status == 1
    line = next(l for l in result.out.splitlines() if "[unrestorable-state]" in l)
    assert line.startswith(f"{NESTED}:") and ": error: [unrestorable-state] " in line
    assert result.out.rstrip().endswith("1 error(s), 0 warning(s)")
    as_json = run_kvmspec("--root", str(new.root), "compat", str(old.root), str(new.root), "--format", "json")
    data = json.loads(as_json.out)
    assert data["errors"] == 1 and data["findings"][0]["rule"] == "unrestorable-state"
    assert data["findings"][0]["path"] == NESTED


def test_git_revisions(tmp_path):
    """compat against git revisions of the repository: HEAD by default, or --base REV."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "spec", repo / "spec")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    s = Scratch.__new__(Scratch)
    s.root = repo
    add_gpat_flag(s)
    result = run_kvmspec("compat", cwd=repo)               # working tree vs HEAD
    assert result.status == 1 and "[unrestorable-state]" in result.out
    assert "compat HEAD -> working tree" in result.out
    subprocess.run([*git, "commit", "-qam", "gpat"], check=True)
    assert run_kvmspec("compat", cwd=repo).status == 0     # nothing changed since HEAD
    between = run_kvmspec("compat", "HEAD~1", "HEAD", cwd=repo)
    assert between.status == 1 and "[unrestorable-state]" in between.out
    based = run_kvmspec("compat", "--base", "HEAD~1", cwd=repo)
    assert based.status == 1
    bad = run_kvmspec("compat", "no-such-rev", cwd=repo)
    assert bad.status == 2 and "neither a directory nor a git revision" in bad.err


def test_values_move_with_their_flag_set(pair):
    """A flag set linux/kvm.h gave up to an architecture's header (removed: with moved_to:)
    takes its values along: they are not reported as removed without deprecation."""
    old, new = pair
    add_items(old, BASE, """
  - flags: kvm_example_moved_flags
    type: __u32
    since: "3.8"
    removed:
      since: "6.9"
      moved_to: powerpc asm/kvm.h
      doc: Moved to the architecture's header.
    doc: An example of a flag set that moved.
    values:
      - {name: KVM_EXAMPLE_MOVED_BIT, value: 1, doc: The only bit.}
""")
    assert "removed-without-deprecation" not in rules(findings(old, new))

