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
from kvmspec.section_coverage import KERNEL_MISSPELLINGS, coverage, identifiers, split_sections

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


def test_a_kernel_misspelling_counts_where_ours_mentions_the_real_name():
    reference = ("4.1 KVM_ALPHA\n-------------\n\nNeeds KVM_CAP_PPC_RADIX_MMU and KVM_CAP_NOT_A_MISSPELLING.\n\n"
                 "4.25 KVM_IRQ_LINE\n-----------------\n\nNot for KVM_IRQ_LEVEL.\n\n"
                 "4.26 KVM_OTHER\n--------------\n\nNot for KVM_IRQ_LEVEL.\n")
    ours = reference.replace("KVM_CAP_PPC_RADIX_MMU", "KVM_CAP_PPC_MMU_RADIX") \
                    .replace("KVM_CAP_NOT_A_MISSPELLING", "KVM_CAP_SOMETHING_ELSE").replace("KVM_IRQ_LEVEL", "KVM_IRQ_LINE")
    report = coverage(reference, ours)
    assert [c.missing for c in report.sections] == [
        ["KVM_CAP_NOT_A_MISSPELLING"],   # only listed misspellings are forgiven
        [],                               # KVM_IRQ_LEVEL stands for KVM_IRQ_LINE in 4.25 ...
        ["KVM_IRQ_LEVEL"]]                # ... and nowhere else


def test_kernel_misspellings_map_to_names_the_spec_defines():
    model = load_model(REPO)
    members = {f.name for item in model.items if item.kind == "struct"
               for rec in item.records_within(every_field=True) for f in rec.fields}
    values = {v.name for vs in model.items if vs.kind in ("enum", "flags") for v in vs.values}
    for wrong, (real, sections) in KERNEL_MISSPELLINGS.items():
        # a name forgiven everywhere must name nothing real; one limited to
        # sections may (a real struct used in the wrong section)
        assert sections or (wrong not in model.by_name and wrong not in values), f"{wrong} is a real name"
        assert real in model.by_name or real in values or real in members, f"{real} is not in the spec"


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
    # Every title is the kernel's, misspelt ones included: none is matched by number alone.
    assert [c.heading for c in report.sections if c.by_number] == []
    # Every section carries at least 95% of what the kernel's mentions.
    assert [(c.heading, c.missing) for c in report.sections if c.share < 0.95] == []


def test_layout_also_must_name_records_or_value_sets(scratch, capsys):
    rel = "spec/documents/api-6-1.yaml"
    scratch.replace(rel, "also: [kvm_s390_irq_type]", "also: [KVM_S390_IRQ]")
    line, col = scratch.line_of(rel, "also: [KVM_S390_IRQ]"), scratch.column_of(rel, "KVM_S390_IRQ]")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert f"{rel}:{line}:{col}: error: section 4.77: no struct, union, enum or flag set is named KVM_S390_IRQ" \
        in result.out + result.err


def test_a_misspelt_kernel_title_is_kept_and_says_what_it_means():
    sections = {s.heading: s.text for s in split_sections(API.read_text())}
    radix = " ".join(sections["8.3 KVM_CAP_PPC_RADIX_MMU"].split())
    assert "the kernel's api.rst's spelling, a name no header defines: the capability KVM_CAP_PPC_MMU_RADIX is meant" \
        in radix
    # A title that names its item needs no such note.
    assert "no header defines" not in sections["8.5 KVM_CAP_MIPS_VZ"]


def test_ioctl_lists_the_argument_struct_of_each_architecture():
    sections = {s.heading: s.text for s in split_sections(API.read_text())}
    get, put = sections["4.11 KVM_GET_REGS"], sections["4.12 KVM_SET_REGS"]
    for arch in ("ppc", "s390", "loongarch", "mips"):
        assert f"On {arch} the argument is this struct kvm_regs:" in get
        assert f"Fields of struct kvm_regs on {arch} (" in get
        # the restore ioctl shows the listing and points to the save ioctl for the fields
        assert f"On {arch} the argument is this struct kvm_regs (its fields" in " ".join(put.split())
        assert f"Fields of struct kvm_regs on {arch}" not in put
    assert "__u64 gpr[32];" in get          # the mips struct
    assert "On x86 the argument" not in get  # x86's is the main listing
    # an ioctl whose struct is one for all architectures lists it once
    assert sections["4.68 KVM_SET_ONE_REG"].count("struct kvm_one_reg {") == 1


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
    # Enum values and id macros of the prefix are rows too, with their value.
    gp = model.by_name["kvm_reg_mips_gp"]
    assert len(gp.values) == 35
    for v in gp.values:
        assert re.search(rf"^  {v.name} +{re.escape(v.expr)} +mips ", one_reg, re.M), v.name
    assert re.search(r"^  KVM_REG_MIPS_FPR_64\(n\) +\(KVM_REG_MIPS_FPR \| KVM_REG_SIZE_U64 \| \(n\)\)", one_reg, re.M)
    rel = "spec/documents/api-6-1.yaml"
    scratch.replace(rel, "KVM_SPSR_, KVM_REG_PPC_,", "KVM_SPSR_, KVM_REG_PCC_,")
    line, col = scratch.line_of(rel, "KVM_REG_PCC_"), scratch.column_of(rel, "KVM_REG_PCC_")
    result = scratch.run("validate", capsys=capsys)
    assert f"{rel}:{line}:{col}: error: section 4.68: no constant starts with KVM_REG_PCC_" in result.out + result.err
