"""`kvmspec audit-docs`: a hand-written api.rst checked against the spec.

tests/data/drift-api.rst is a small document in the kernel's format with
deliberate mistakes; each test states what is wrong in it and where, and that
the correct sections stay silent.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import REPO, run_kvmspec
from kvmspec.audit import audit_docs, parse_arches, parse_version, scan_names
from kvmspec.build import load_model
from kvmspec.cli import main

DRIFT = REPO / "tests" / "data" / "drift-api.rst"
DRIFT_TEXT = DRIFT.read_text()
GAPS = ("no-section", "undocumented")
FINDING = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): "
                     r"\[(?P<kind>[a-z-]+)\] (?P<message>.*)$", re.M)


@pytest.fixture(scope="module")
def model():
    return load_model(REPO)


def audit(*args: str, capsys) -> tuple[int, str, str]:
    status = main(["--root", str(REPO), "audit-docs", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def line_of(needle: str, after: str = "", text: str = DRIFT_TEXT) -> int:
    """1-based line of the only occurrence of `needle` (the first one after `after`)."""
    start = text.index(after) if after else 0
    index = text.index(needle, start)
    if not after:
        assert text.count(needle) == 1, f"{needle!r} is not unique"
    return text.count("\n", 0, index) + 1


def col_of(needle: str, after: str = "", text: str = DRIFT_TEXT) -> int:
    start = text.index(after) if after else 0
    index = text.index(needle, start)
    return index - (text.rfind("\n", 0, index) + 1) + 1


def field(section: str, name: str) -> tuple[int, int]:
    """Line and column of the value of field :name: in the section whose heading is `section`."""
    heading = f"\n{section}\n"
    prefix = f":{name}: "
    return line_of(prefix, heading), col_of(prefix, heading) + len(prefix)


def findings(out: str) -> list[dict]:
    return [m.groupdict() for m in FINDING.finditer(out)]


# ------------------------------------------------------------------ the drift document


def test_drift_document_reports_each_mistake_where_it_is(capsys):
    status, out, err = audit(str(DRIFT), capsys=capsys)
    assert status == 1, err
    got = [(int(f["line"]), int(f["col"]), f["severity"], f["kind"]) for f in findings(out)
           if f["kind"] not in GAPS]
    expected = sorted([
        # names
        (line_of("KVM_CAP_IRQCHIP_SPLIT"), col_of("KVM_CAP_IRQCHIP_SPLIT"), "error", "unknown-name"),
        (line_of("KVM_EXIT_DIRTY_LOG_FULL"), col_of("KVM_EXIT_DIRTY_LOG_FULL"), "error", "unknown-name"),
        (line_of("kvm_vcpu_event."), col_of("kvm_vcpu_event."), "error", "unknown-name"),
        (line_of("KVM_FOO_BAR_*"), col_of("KVM_FOO_BAR_*"), "warning", "unknown-prefix"),
        (line_of("KVM_SET_MEMORY_REGION."), col_of("KVM_SET_MEMORY_REGION."), "warning", "removed-name"),
        (line_of("KVM_CREATE_PIT."), col_of("KVM_CREATE_PIT."), "warning", "deprecated-name"),
        # fields
        (*field("4.7 KVM_GET_NESTED_STATE", "Capability"), "error", "capability-mismatch"),
        (*field("4.8 KVM_SET_TSC_KHZ", "Architectures"), "error", "arch-mismatch"),
        (*field("4.9 KVM_GET_DEBUGREGS", "Type"), "error", "type-mismatch"),
        (*field("4.10 KVM_GET_REGS", "Parameters"), "error", "parameters-mismatch"),
        (*field("4.11 KVM_SET_REGS", "Parameters"), "warning", "direction-mismatch"),
        (*field("4.12 KVM_IRQ_LINE", "Architectures"), "warning", "arch-omitted"),
        (*field("7.2 KVM_CAP_SPLIT_IRQCHIP", "Target"), "error", "type-mismatch"),
    ])
    assert got == expected
    # the path is the one given, and the findings come in document order
    assert all(f["path"] == str(DRIFT) for f in findings(out) if f["kind"] not in GAPS)


def test_messages_say_what_is_wrong_and_suggest_the_spec_name(capsys):
    _, out, _ = audit(str(DRIFT), capsys=capsys)
    messages = {(f["kind"], int(f["line"])): f["message"] for f in findings(out)
                if f["path"] == str(DRIFT) and "kvm_vcpu_event " not in f["message"]}
    typo = messages["unknown-name", line_of("KVM_CAP_IRQCHIP_SPLIT")]
    assert "KVM_CAP_IRQCHIP_SPLIT" in typo and "did you mean KVM_CAP_SPLIT_IRQCHIP" in typo
    renamed = messages["unknown-name", line_of("KVM_EXIT_DIRTY_LOG_FULL")]
    assert "did you mean KVM_EXIT_DIRTY_RING_FULL" in renamed
    struct = next(f["message"] for f in findings(out) if f["message"].startswith("struct kvm_vcpu_event "))
    assert "did you mean struct kvm_vcpu_events" in struct
    assert "removed from the API in 6.2" in messages["removed-name", line_of("KVM_SET_MEMORY_REGION.")]
    assert "use KVM_CREATE_PIT2" in messages["deprecated-name", line_of("KVM_CREATE_PIT.")]
    cap = messages["capability-mismatch", field("4.7 KVM_GET_NESTED_STATE", "Capability")[0]]
    assert "says KVM_CAP_VCPU_EVENTS" in cap and "KVM_CAP_NESTED_STATE" in cap
    arch = messages["arch-mismatch", field("4.8 KVM_SET_TSC_KHZ", "Architectures")[0]]
    assert "lists s390" in arch and "spec: x86" in arch
    fd = messages["type-mismatch", field("4.9 KVM_GET_DEBUGREGS", "Type")[0]]
    assert "says vm ioctl" in fd and "issues it on vcpu" in fd
    params = messages["parameters-mismatch", field("4.10 KVM_GET_REGS", "Parameters")[0]]
    assert "struct kvm_sregs (out)" in params and "takes struct kvm_regs (out)" in params
    assert "leaves out ppc" in messages["arch-omitted", field("4.12 KVM_IRQ_LINE", "Architectures")[0]]
    target = messages["type-mismatch", field("7.2 KVM_CAP_SPLIT_IRQCHIP", "Target")[0]]
    assert "says vcpu" in target and "enables it on vm" in target


def test_correct_sections_and_known_names_are_not_reported(capsys):
    _, out, _ = audit(str(DRIFT), capsys=capsys)
    reported = findings(out)
    quiet = ["4.1 KVM_GET_API_VERSION", "4.2 KVM_GET_MSR_INDEX_LIST", "4.3 KVM_GET_MSRS", "4.4 KVM_CHECK_EXTENSION",
             "4.5 KVM_SET_USER_MEMORY_REGION2", "4.13 KVM_ARM_VCPU_INIT", "4.14 KVM_SET_GUEST_DEBUG",
             "7.1 KVM_CAP_EXCEPTION_PAYLOAD"]
    lines = DRIFT_TEXT.splitlines()
    for heading in quiet:
        start = line_of(heading)
        end = next(i for i in range(start + 2, len(lines) + 1) if re.fullmatch(r"-{3,}|={3,}", lines[i - 1])) - 1
        inside = [f for f in reported if f["path"] == str(DRIFT) and start <= int(f["line"]) < end]
        assert inside == [], heading
    # the fields of 4.6 are right (only the removed name in its text is reported)
    assert [f["kind"] for f in reported if f["path"] == str(DRIFT) and line_of("4.6 KVM_SET_NESTED_STATE")
            <= int(f["line"]) < line_of("4.7 KVM_GET_NESTED_STATE")] == ["removed-name"]
    subjects = {f["message"].removeprefix("struct ").split()[0] for f in reported if f["kind"] == "unknown-name"}
    assert subjects == {"KVM_CAP_IRQCHIP_SPLIT", "KVM_EXIT_DIRTY_LOG_FULL", "kvm_vcpu_event"}
    prefixes = [f["message"] for f in reported if f["kind"] == "unknown-prefix"]
    assert prefixes == ["no spec name starts with KVM_FOO_BAR_ (used as a prefix or wildcard)"]
    # KVM_SET_CPUID and KVM_SET_MEMORY_ALIAS are called obsolete / removed where they are used
    on_the_way_out = [f["message"].split()[0] for f in reported if f["kind"] in ("removed-name", "deprecated-name")]
    assert on_the_way_out == ["KVM_SET_MEMORY_REGION", "KVM_CREATE_PIT"]


def test_json_has_the_same_findings_and_the_figures(capsys):
    status, out, _ = audit(str(DRIFT), "--format", "json", capsys=capsys)
    assert status == 1
    data = json.loads(out)
    assert data["path"] == str(DRIFT)
    assert data["kernel_version"] == "6.8" and data["version_basis"].startswith("inferred from")
    assert "KVM_SET_USER_MEMORY_REGION2" in data["version_basis"]
    assert data["errors"] == 8
    assert data["errors"] + data["warnings"] == len(data["findings"])
    first = data["findings"][0]
    assert set(first) == {"path", "line", "column", "severity", "kind", "message"}
    typo = next(f for f in data["findings"] if "KVM_CAP_IRQCHIP_SPLIT" in f["message"])
    assert (typo["line"], typo["column"], typo["severity"], typo["kind"]) == (
        line_of("KVM_CAP_IRQCHIP_SPLIT"), col_of("KVM_CAP_IRQCHIP_SPLIT"), "error", "unknown-name")
    summary = data["summary"]
    assert summary["lines"] == len(DRIFT_TEXT.splitlines())
    assert summary["sections"] == 16           # 4.1-4.14, 7.1, 7.2 (9.1 names nothing)
    assert summary["unknown_identifiers"] == 3 == len(data["unknown_identifiers"])
    assert sorted(data["unknown_identifiers"]) == ["KVM_CAP_IRQCHIP_SPLIT", "KVM_EXIT_DIRTY_LOG_FULL", "kvm_vcpu_event"]
    # arm64's asm/kvm.h is in the spec now: no name of the document lies outside it
    assert data["outside_spec"] == []
    assert summary["field_disagreements"] == 7
    assert "KVM_GET_REGS" not in data["missing_ioctl_sections"]
    assert "KVM_RUN" in data["missing_ioctl_sections"]
    # capabilities named in a :Capability: field are documented there
    assert "KVM_CAP_NESTED_STATE" not in data["missing_capability_sections"]
    assert "KVM_CAP_HLT" in data["missing_capability_sections"]
    # nothing newer than the document's version counts as missing
    assert "KVM_CREATE_GUEST_MEMFD" in data["missing_ioctl_sections"]        # 6.8
    assert "KVM_PRE_FAULT_MEMORY" not in data["missing_ioctl_sections"]      # 6.11


def test_summary_line_gives_the_figures(capsys):
    _, out, _ = audit(str(DRIFT), capsys=capsys)
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(f"kvmspec audit-docs {DRIFT} against Linux 6.8 (inferred")
    for figure in ("16 sections read", "3 unknown identifiers", "7 field disagreements", "8 error(s)"):
        assert figure in summary
    assert re.search(r"\d+ of \d+ ioctls without a section \(\d+ never mentioned\)", summary)
    assert re.search(r"\d+ of \d+ capabilities without a section \(\d+ never mentioned\)", summary)


def test_a_given_kernel_version_changes_what_counts(capsys):
    status, out, _ = audit(str(DRIFT), "--kernel-version", "6.1", "--format", "json", capsys=capsys)
    data = json.loads(out)
    assert data["kernel_version"] == "6.1" and data["version_basis"] == "given"
    kinds = {(f["kind"], f["line"]) for f in data["findings"]}
    # KVM_SET_MEMORY_REGION was still there in 6.1
    assert ("removed-name", line_of("KVM_SET_MEMORY_REGION.")) not in kinds
    # a 6.8 name in a document said to be 6.1 is suspicious
    newer = [f for f in data["findings"] if f["kind"] == "newer-than-document"]
    assert {f["message"].split()[3] for f in newer} == {"KVM_SET_USER_MEMORY_REGION2", "KVM_CAP_USER_MEMORY2",
                                                        "kvm_userspace_memory_region2"}
    assert "KVM_CREATE_GUEST_MEMFD" not in data["missing_ioctl_sections"]   # 6.8, after 6.1


# ------------------------------------------------------------------ exit statuses


def test_a_document_without_errors_exits_0(tmp_path, capsys):
    clean = tmp_path / "api.rst"
    clean.write_text(DRIFT_TEXT[:DRIFT_TEXT.index("4.6 KVM_SET_NESTED_STATE")])
    status, out, err = audit(str(clean), capsys=capsys)
    assert status == 0, out + err
    assert " 0 error(s)" in out.splitlines()[-1]
    assert all(f["severity"] == "warning" for f in findings(out))


@pytest.mark.parametrize("setup, words", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"4.1 KVM_RUN\n\xff\xfe\n"), "not UTF-8"),
])
def test_a_missing_or_unreadable_document_exits_2(tmp_path, capsys, setup, words):
    path = tmp_path / "api.rst"
    setup(path)
    status, out, err = audit(str(path), capsys=capsys)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"kvmspec: error: {path}: ") and words in err


def test_unreadable_document_in_a_real_process_has_no_traceback(tmp_path):
    (tmp_path / "file.rst").write_text("4.1 KVM_RUN\n")
    unreadable = [tmp_path / "file.rst" / "api.rst"]          # a file is not a directory, even for root
    if os.geteuid() != 0:
        secret = tmp_path / "secret.rst"
        secret.write_text("4.1 KVM_RUN\n")
        secret.chmod(0)
        unreadable.append(secret)
    for path in unreadable:
        result = run_kvmspec("--root", str(REPO), "audit-docs", str(path))
        assert result.status == 2, path
        assert "Traceback" not in result.err and result.err.strip().count("\n") == 0
        assert result.err.startswith(f"kvmspec: error: {path}: cannot be read (")
    missing = run_kvmspec("--root", str(REPO), "audit-docs", str(tmp_path / "nope.rst"))
    assert (missing.status, missing.out, missing.err.strip()) == (
        2, "", f"kvmspec: error: {tmp_path / 'nope.rst'}: no such file")


def test_a_bad_kernel_version_is_a_usage_error(capsys):
    status, _, err = audit(str(DRIFT), "--kernel-version", "six", capsys=capsys)
    assert status == 2 and "--kernel-version" in err


def test_help_lists_every_kind_with_its_severity(capsys):
    from kvmspec.audit import KINDS
    status = main(["audit-docs", "--help"])
    out = capsys.readouterr().out
    assert status == 0
    for kind in KINDS.values():
        assert f"{kind.id} ({kind.severity})" in out
    assert "exit status" in out


# ------------------------------------------------------------------ missing sections

OLD_DOC = """\
4. API description
==================

4.1 KVM_GET_API_VERSION
-----------------------

:Capability: basic
:Architectures: all
:Type: system ioctl
:Parameters: none

4.2 KVM_CREATE_VM
-----------------

:Capability: basic
:Architectures: all
:Type: system ioctl
:Parameters: machine type identifier (KVM_VM_*)

4.3 KVM_CHECK_EXTENSION
-----------------------

:Capability: basic
:Architectures: all
:Type: system ioctl
:Parameters: extension identifier (KVM_CAP_*)

4.4 KVM_GET_REGS, KVM_SET_REGS
------------------------------

:Capability: basic
:Architectures: x86
:Type: vcpu ioctl
:Parameters: struct kvm_regs (in/out)

4.5 KVM_GET_SREGS / KVM_SET_SREGS
---------------------------------

:Capability: basic
:Architectures: x86
:Type: vcpu ioctl
:Parameters: struct kvm_sregs (in/out)

4.6 KVM_GET_MSRS/KVM_SET_MSRS
-----------------------------

:Capability: basic
:Architectures: x86
:Type: vcpu ioctl
:Parameters: struct kvm_msrs (in/out)

4.7 KVM_RUN
-----------

:Capability: basic
:Architectures: all
:Type: vcpu ioctl
:Parameters: none

4.8 KVM_GET_VCPU_MMAP_SIZE
--------------------------

:Capability: basic
:Architectures: all
:Type: system ioctl
:Parameters: none

The floating point unit is saved with KVM_GET_FPU.

4.9 KVM_CREATE_IRQCHIP
----------------------

:Capability: KVM_CAP_IRQCHIP
:Architectures: x86, arm64, s390
:Type: vm ioctl
:Parameters: none
"""


def test_ioctls_and_capabilities_without_a_section(tmp_path, capsys):
    doc = tmp_path / "api.rst"
    doc.write_text(OLD_DOC)
    status, out, _ = audit(str(doc), "--kernel-version", "2.6.24", "--format", "json", capsys=capsys)
    data = json.loads(out)
    # In 2.6.24 the spec has 28 ioctls (22 since 2.6.22; the in-kernel irqchip's
    # KVM_CREATE_IRQCHIP, KVM_IRQ_LINE, KVM_GET/SET_IRQCHIP and KVM_GET/SET_LAPIC
    # since 2.6.24) and two capabilities, KVM_CAP_IRQCHIP and KVM_CAP_HLT (both
    # 2.6.24). The memory region and alias ioctls were removed only in 6.2, so
    # they count.
    assert data["summary"]["ioctls_considered"] == 28
    assert data["summary"]["capabilities_considered"] == 2
    assert sorted(data["missing_ioctl_sections"]) == sorted([
        "KVM_CREATE_VCPU", "KVM_GET_FPU", "KVM_SET_FPU", "KVM_GET_MSR_INDEX_LIST", "KVM_SET_CPUID",
        "KVM_SET_MEMORY_REGION", "KVM_SET_MEMORY_ALIAS", "KVM_GET_DIRTY_LOG", "KVM_TRANSLATE",
        "KVM_INTERRUPT", "KVM_SET_SIGNAL_MASK",
        "KVM_IRQ_LINE", "KVM_GET_IRQCHIP", "KVM_SET_IRQCHIP", "KVM_GET_LAPIC", "KVM_SET_LAPIC"])
    assert data["summary"]["ioctls_never_mentioned"] == 15          # all but KVM_GET_FPU
    # KVM_CAP_IRQCHIP is named in a :Capability: field: documented there
    assert data["missing_capability_sections"] == ["KVM_CAP_HLT"]
    assert data["summary"]["capabilities_never_mentioned"] == 1
    by_name = {f["message"].split()[0]: f for f in data["findings"]}
    fpu = by_name["KVM_GET_FPU"]
    assert (fpu["kind"], fpu["severity"], fpu["path"], fpu["line"]) == (
        "no-section", "warning", str(doc), OLD_DOC.splitlines().index(
            "The floating point unit is saved with KVM_GET_FPU.") + 1)
    assert "(ioctl, x86, s390, loongarch, since 2.6.22)" in fpu["message"] and "4.8 KVM_GET_VCPU_MMAP_SIZE" in fpu["message"]
    hlt = by_name["KVM_CAP_HLT"]
    assert (hlt["kind"], hlt["path"]) == ("undocumented", "spec/common/capabilities.yaml")
    assert "capability: KVM_CAP_HLT" in (REPO / hlt["path"]).read_text().splitlines()[hlt["line"] - 1]
    region = by_name["KVM_SET_MEMORY_REGION"]
    assert region["kind"] == "undocumented" and "all architectures" in region["message"]
    # gaps are warnings: nothing in this document is wrong
    assert status == 0 and data["errors"] == 0


def test_a_labelled_section_keeps_a_misspelt_kernel_title(model):
    """kvmspec's api.rst keeps the kernel's titles, misspelt ones too; the
    label above the heading says which item the section describes."""
    body = ":Architectures: ppc\n:Parameters: none\n\nRadix.\n"
    labelled = (".. _api-KVM_CAP_PPC_MMU_RADIX:\n\n8.3 KVM_CAP_PPC_RADIX_MMU\n-------------------------\n\n" + body
                + "\nSee KVM_CAP_PPC_RADIX_MMU.\n")
    report = audit_docs(model, labelled, "api.rst", kernel_version=parse_version("6.1"))
    unknown = [(f.mark.line, f.message.split()[0]) for f in report.findings if f.rule == "unknown-name"]
    # the heading is the kernel's spelling of the labelled item; the text's use is still a misspelling
    assert unknown == [(labelled.splitlines().index("See KVM_CAP_PPC_RADIX_MMU.") + 1, "KVM_CAP_PPC_RADIX_MMU")]
    assert "KVM_CAP_PPC_MMU_RADIX" not in report.missing_capabilities
    # Without the label the heading is reported, and the capability has no section.
    bare = audit_docs(model, labelled.split("\n", 2)[2], "api.rst", kernel_version=parse_version("6.1"))
    assert [f.mark.line for f in bare.findings if f.rule == "unknown-name"][0] == 1
    assert "KVM_CAP_PPC_MMU_RADIX" in bare.missing_capabilities
    # A label of another item does not excuse the heading.
    other = audit_docs(model, labelled.replace("_api-KVM_CAP_PPC_MMU_RADIX", "_api-KVM_CAP_PPC_MMU_HASH_V3"),
                       "api.rst", kernel_version=parse_version("6.1"))
    assert [f.mark.line for f in other.findings if f.rule == "unknown-name"][0] == 3


def test_removed_items_do_not_count_as_missing_once_removed(tmp_path, capsys):
    doc = tmp_path / "api.rst"
    doc.write_text(OLD_DOC)
    _, out, _ = audit(str(doc), "--kernel-version", "6.2", "--format", "json", capsys=capsys)
    missing = json.loads(out)["missing_ioctl_sections"]
    assert "KVM_SET_MEMORY_REGION" not in missing and "KVM_SET_MEMORY_ALIAS" not in missing
    assert "KVM_SET_USER_MEMORY_REGION" in missing
    # __KVM_DEPRECATED_* only reserve numbers
    assert not any(n.startswith("__") for n in missing)


# ------------------------------------------------------------------ pieces


def test_abbreviations_are_spelled_out(model):
    known = frozenset(i.name for i in model.items)
    text = ("KVM_SET_CPUID{,2} KVM_(UN)REGISTER_COALESCED_MMIO KVM_SET/GET/HAS_DEVICE_ATTR "
            "KVM_XEN_HVM_GET_ATTR/SET_ATTR KVM_GET_ONE_REG/KVM_SET_ONE_REG KVM_CAP_* KVM_REG_MIPS_FCR_ "
            "struct  kvm_run")
    got = [(m.name, m.prefix, m.struct) for m in scan_names(text, known)]
    assert got == [
        ("KVM_SET_CPUID", False, False), ("KVM_SET_CPUID2", False, False),
        ("KVM_REGISTER_COALESCED_MMIO", False, False), ("KVM_UNREGISTER_COALESCED_MMIO", False, False),
        ("KVM_SET_DEVICE_ATTR", False, False), ("KVM_GET_DEVICE_ATTR", False, False),
        ("KVM_HAS_DEVICE_ATTR", False, False),
        ("KVM_XEN_HVM_GET_ATTR", False, False), ("KVM_XEN_HVM_SET_ATTR", False, False),
        ("KVM_GET_ONE_REG", False, False), ("KVM_SET_ONE_REG", False, False),
        ("KVM_CAP_", True, False), ("KVM_REG_MIPS_FCR_", True, False),
        ("kvm_run", False, True),
    ]
    # positions are 1-based and point at the name
    run = scan_names("x\n  struct kvm_run", known)[0]
    assert (run.line, run.col) == (2, 10)


def test_architecture_spellings():
    every = ("x86", "arm64", "s390", "ppc", "mips", "riscv", "loongarch")
    assert parse_arches("all", every) == frozenset(every)
    assert parse_arches("any", every) == frozenset(every)
    assert parse_arches("all except arm64", every) == frozenset(every) - {"arm64"}
    assert parse_arches("x86 (vmx)", every) == {"x86"}
    assert parse_arches("powerpc", every) == {"ppc"}
    assert parse_arches("x86, arm64", every) == {"x86", "arm64"}
    assert parse_arches("x86 s390 arm64", every) == {"x86", "s390", "arm64"}
    assert parse_arches("Any that implement pvclocks (currently x86 only)", every) == {"x86"}
    assert parse_arches("none", every) == frozenset()
    assert parse_arches("whatever", every) is None
    assert parse_version("6.1.192") == parse_version("v6.1") == parse_version("6.1-rc3")
    assert parse_version("6.1").parts == (6, 1) and parse_version("2.6.24").parts == (2, 6, 24)
    with pytest.raises(ValueError):
        parse_version("six")


def test_the_generated_api_rst_agrees_with_the_spec(model):
    """Our own api.rst is in the kernel's format: auditing it finds nothing,
    not even a deprecated name used without saying so."""
    text = (REPO / "generated/Documentation/virt/kvm/api.rst").read_text()
    report = audit_docs(model, text, "api.rst")
    assert report.findings == [], [str(f) for f in report.findings]
    assert report.field_disagreements == 0
    assert report.missing_ioctls == [] and report.missing_capabilities == []
    assert report.sections > 300
