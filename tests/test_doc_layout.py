"""api.rst in the kernel's layout (spec/documents/), and `kvmspec doc-coverage`,
which measures how much of a reference api.rst each of our sections covers."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from conftest import REPO
from kvmspec.build import load_model
from kvmspec.cli import main
from kvmspec.section_coverage import coverage, identifiers, split_sections

API = REPO / "generated/Documentation/virt/kvm/api.rst"
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")

REFERENCE = """\
1. General description
======================

Talk about KVM_CREATE_VM and ``struct kvm_foo``.

4. API description
==================

4.1 KVM_ALPHA
-------------

::

  struct kvm_alpha {
        __u32 flags;
        __u8  pad[4];
        struct kvm_beta inner;
  };

Use KVM_BETA_FLAG_X with KVM_CHECK_EXTENSION; KVM_REG_ARM_* is a family.

4.2 KVM_GAMMA
-------------

Nothing.

4.2 KVM_GAMMA
-------------

A second section of the same number, about KVM_DELTA.

7.18 KVM_CAP_BARE

Written without an underline; mentions KVM_ENABLE_CAP.
"""


def test_sections_are_split_at_numbered_headings_and_keep_their_heading():
    headings = [s.heading for s in split_sections(REFERENCE)]
    assert headings == ["1. General description", "4. API description", "4.1 KVM_ALPHA", "4.2 KVM_GAMMA",
                        "4.2 KVM_GAMMA", "7.18 KVM_CAP_BARE"]


def test_identifiers_are_kvm_names_records_and_declared_members():
    section = split_sections(REFERENCE)[2]
    assert identifiers(section.text) == ["KVM_ALPHA", "KVM_BETA_FLAG_X", "KVM_CHECK_EXTENSION", "kvm_alpha",
                                         "kvm_beta", "flags", "pad", "inner"]


def test_coverage_compares_sections_of_the_same_heading():
    ours = REFERENCE.replace("Use KVM_BETA_FLAG_X with KVM_CHECK_EXTENSION", "Use KVM_BETA_FLAG_X") \
                    .replace("about KVM_DELTA", "about nothing")
    report = coverage(REFERENCE, ours)
    by = [(c.heading, c.missing) for c in report.sections]
    assert ("4.1 KVM_ALPHA", ["KVM_CHECK_EXTENSION"]) in by
    assert by[3:5] == [("4.2 KVM_GAMMA", []), ("4.2 KVM_GAMMA", ["KVM_DELTA"])]   # repeated numbers pair in order
    alpha = report.sections[2]
    assert alpha.share == pytest.approx(7 / 8)
    # A section renumbered or retitled in ours counts as absent: nothing covered.
    moved = coverage(REFERENCE, ours.replace("4.1 KVM_ALPHA", "4.9 KVM_ALPHA"))
    assert not moved.sections[2].found and moved.sections[2].share == 0
    # A title spelt otherwise (a misspelt name corrected) pairs by its number when that is unique.
    spelt = coverage(REFERENCE, ours.replace("4.1 KVM_ALPHA", "4.1 KVM_OMEGA"))
    assert spelt.sections[2].found and spelt.sections[2].by_number
    assert spelt.sections[2].missing == ["KVM_ALPHA", "KVM_CHECK_EXTENSION"]


def test_command_reports_the_distribution_and_fails_below_the_goal_with_check(tmp_path, capsys):
    ref = tmp_path / "ref.rst"
    ref.write_text(REFERENCE)
    ours = tmp_path / "ours.rst"
    ours.write_text(REFERENCE.replace("about KVM_DELTA", "about nothing"))
    assert main(["--root", str(REPO), "doc-coverage", str(ref), str(ours)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ref\.rst:\d+: 4\.2 KVM_GAMMA: 50\.0% of 2; missing: KVM_DELTA", out)
    assert "6 sections, min 50.0%, median 100.0%" in out and "1 below 95%" in out
    assert main(["--root", str(REPO), "doc-coverage", "--check", str(ref), str(ours)]) == 1
    capsys.readouterr()
    assert main(["--root", str(REPO), "doc-coverage", "--format", "json", str(ref), str(ours)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["below"] == 1 and data["min"] == 0.5


def test_missing_document_is_a_usage_error(tmp_path, capsys):
    assert main(["--root", str(REPO), "doc-coverage", str(tmp_path / "nope.rst")]) == 2
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------ the generated api.rst


def test_generated_api_rst_has_every_heading_of_the_layout_in_its_order():
    layout = load_model(REPO).documents[-1]
    expected = [h for ch in layout.chapters for h in [ch.heading, *(s.heading for s in ch.sections)]]
    got = [s.heading for s in split_sections(API.read_text())]
    assert [h for h in got if h in expected] == expected


def test_sections_the_layout_lacks_follow_the_last_of_their_chapter():
    text = API.read_text()
    headings = [s.heading for s in split_sections(text)]
    last = headings.index("4.137 KVM_S390_ZPCI_OP")
    assert headings[last + 1].startswith("4.138 ")
    assert headings.index("5. The kvm_run structure") > last + 1
    numbers = [int(h.split()[0].split(".")[1]) for h in headings[last:headings.index("5. The kvm_run structure")]]
    assert numbers == list(range(137, 137 + len(numbers)))


def test_layout_names_must_be_spec_items(scratch, capsys):
    rel = "spec/documents/api-6-1.yaml"
    scratch.replace(rel, "names: [KVM_CREATE_VM]", "names: [KVM_CREATE_VMM]")
    line = scratch.line_of(rel, "KVM_CREATE_VMM")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert f"spec/documents/api-6-1.yaml:{line}:17: error: section 4.2: no ioctl is named KVM_CREATE_VMM" in result.out + result.err


def test_restore_ioctl_refers_to_the_save_ioctls_tables():
    sections = {s.heading: s.text for s in split_sections(API.read_text())}
    save, restore = sections["4.114 KVM_GET_NESTED_STATE"], sections["4.115 KVM_SET_NESTED_STATE"]
    # The save ioctl comes first in the kernel's order: its section has the
    # field descriptions and value tables; the restore shows only the listing.
    assert "Fields of struct kvm_nested_state" in save and "KVM_STATE_NESTED_GIF_SET  " in save
    assert "Fields of struct kvm_nested_state" not in restore and "KVM_STATE_NESTED_GIF_SET  " not in restore
    assert "struct kvm_nested_state {" in restore
    assert "as KVM_GET_NESTED_STATE has it" in " ".join(restore.split())
    # Where the kernel describes the set ioctl first (Xen attributes), the get refers to it.
    sets, gets = sections["4.126 KVM_XEN_HVM_SET_ATTR"], sections["4.127 KVM_XEN_HVM_GET_ATTR"]
    assert "Fields of struct kvm_xen_hvm_attr" in sets and "Fields of struct kvm_xen_hvm_attr" not in gets


@pytest.mark.skipif(not KERNEL_SOURCE.exists(), reason="needs Debian's linux-source-6.1")
def test_every_kernel_6_1_section_has_its_heading_in_ours(tmp_path):
    with tarfile.open(KERNEL_SOURCE) as tar:
        member = next(m for m in tar if m.name.endswith("Documentation/virt/kvm/api.rst"))
        kernel = tar.extractfile(member).read().decode()
    report = coverage(kernel, API.read_text())
    assert len(report.sections) > 200
    assert [c.heading for c in report.sections if not c.found] == []
    # Only the kernel's misspelt titles are matched by number.
    assert [c.heading for c in report.sections if c.by_number] == [
        "8.3 KVM_CAP_PPC_RADIX_MMU", "8.4 KVM_CAP_PPC_HASH_MMU_V3", "8.31 KVM_CAP_PPC_MULTITCE"]


def test_layout_also_must_name_records_or_value_sets(scratch, capsys):
    rel = "spec/documents/api-6-1.yaml"
    scratch.replace(rel, "also: [kvm_s390_irq_type]", "also: [KVM_S390_IRQ]")
    line, col = scratch.line_of(rel, "also: [KVM_S390_IRQ]"), scratch.column_of(rel, "KVM_S390_IRQ]")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert f"{rel}:{line}:{col}: error: section 4.77: no struct, union, enum or flag set is named KVM_S390_IRQ" \
        in result.out + result.err


def test_section_lists_what_the_layout_adds_in_full():
    sections = {s.heading: s.text for s in split_sections(API.read_text())}
    stats = sections["4.133 KVM_GET_STATS_FD"]
    assert "struct kvm_stats_desc {" in stats and "KVM_STATS_UNIT_SECONDS" in stats


def test_layout_constants_tabulate_every_constant_of_a_prefix(scratch, capsys):
    model = load_model(REPO)
    sections = {s.heading: s.text for s in split_sections(API.read_text())}
    one_reg = sections["4.68 KVM_SET_ONE_REG"]
    ppc = [i.name for i in model.items if i.kind == "const" and i.emitted and i.name.startswith("KVM_REG_PPC_")]
    assert ppc and all(re.search(rf"\b{name}\b", one_reg) for name in ppc)
    rel = "spec/documents/api-6-1.yaml"
    scratch.replace(rel, "constants: [KVM_REG_ARM, KVM_REG_PPC_", "constants: [KVM_REG_ARM, KVM_REG_PCC_")
    line, col = scratch.line_of(rel, "KVM_REG_PCC_"), scratch.column_of(rel, "KVM_REG_PCC_")
    result = scratch.run("validate", capsys=capsys)
    assert f"{rel}:{line}:{col}: error: section 4.68: no constant starts with KVM_REG_PCC_" in result.out + result.err
