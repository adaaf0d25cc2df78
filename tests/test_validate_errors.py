"""`kvmspec validate` on broken specs: one case per check, message and position asserted.

Each case breaks a copy of the real spec in one place and expects the error
at the line (and column) of the breakage, with exit status 1 and no
traceback.
"""

from __future__ import annotations

import re


NESTED = "spec/x86/nested-state.yaml"
BASE = "spec/common/base.yaml"
CAPS = "spec/common/capabilities.yaml"

NEW_STRUCT = """
  - struct: kvm_example
    since: "7.0"
    doc: An example record.
    fields:
{fields}
"""


def errors_of(result) -> list[str]:
    return [line for line in result.err.splitlines() if ": error: " in line]


def expect_error(scratch, capsys, rel: str, line: int, message: str, col: int | None = None):
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1, result.err
    assert "Traceback" not in result.err + result.out
    prefix = f"{rel}:{line}:" + (f"{col}:" if col is not None else "")
    matching = [e for e in errors_of(result) if e.startswith(prefix) and message in e]
    assert matching, f"no error at {prefix} with {message!r} in:\n{result.err}"
    return result


def add_items(scratch, rel: str, text: str) -> None:
    scratch.write(rel, scratch.read(rel).rstrip("\n") + "\n" + text)


# ------------------------------------------------------------------ references


def test_unknown_flag_set_reference(scratch, capsys):
    scratch.replace(NESTED, "        flags: kvm_vmx_nested_state_flags", "        flags: kvm_vmx_nested_flags")
    line = scratch.line_of(NESTED, "flags: kvm_vmx_nested_flags")
    expect_error(scratch, capsys, NESTED, line, "unknown flag set 'kvm_vmx_nested_flags'")


def test_unknown_record_type(scratch, capsys):
    scratch.replace(NESTED, "type: struct kvm_svm_nested_state_hdr",
                    "type: struct kvm_svm_nested_state_header")
    line = scratch.line_of(NESTED, "kvm_svm_nested_state_header")
    expect_error(scratch, capsys, NESTED, line, "unknown struct 'kvm_svm_nested_state_header'")


def test_unknown_capability_of_ioctl(scratch, capsys):
    scratch.replace(NESTED, "    capability: KVM_CAP_NESTED_STATE\n    since: \"4.19\"\n    arg:\n      doc: |\n        A buffer starting",
                    "    capability: KVM_CAP_NESTED_STAT\n    since: \"4.19\"\n    arg:\n      doc: |\n        A buffer starting")
    line = scratch.line_of(NESTED, "KVM_CAP_NESTED_STAT\n")
    expect_error(scratch, capsys, NESTED, line, "unknown capability 'KVM_CAP_NESTED_STAT'", col=17)


def test_reference_to_the_wrong_kind(scratch, capsys):
    scratch.replace(NESTED, "        enum: kvm_nested_state_format", "        enum: kvm_nested_state_flags")
    line = scratch.line_of(NESTED, "enum: kvm_nested_state_flags")
    expect_error(scratch, capsys, NESTED, line, "unknown enum 'kvm_nested_state_flags' (it is a flags)")


def test_unknown_field_in_validates(scratch, capsys):
    scratch.replace(NESTED, "      - field: hdr.vmx.flags\n        unknown_bits",
                    "      - field: hdr.vmx.flag\n        unknown_bits")
    line = scratch.line_of(NESTED, "field: hdr.vmx.flag\n")
    expect_error(scratch, capsys, NESTED, line, "struct kvm_nested_state has no field 'hdr.vmx.flag'")


def test_emitted_value_not_in_the_fields_set(scratch, capsys):
    scratch.replace(NESTED, "          - KVM_STATE_NESTED_GIF_SET\n      - field: hdr.vmx.smm.flags",
                    "          - KVM_STATE_NESTED_SMM_VMXON\n      - field: hdr.vmx.smm.flags")
    line = scratch.line_of(NESTED, "          - KVM_STATE_NESTED_SMM_VMXON")
    expect_error(scratch, capsys, NESTED, line,
                 "KVM_STATE_NESTED_SMM_VMXON is not a value of field flags")


def test_unknown_name_in_expression(scratch, capsys):
    scratch.replace(NESTED, "array: KVM_STATE_NESTED_SVM_VMCB_SIZE", "array: KVM_STATE_NESTED_SVM_VMCB")
    line = scratch.line_of(NESTED, "array: KVM_STATE_NESTED_SVM_VMCB\n")
    expect_error(scratch, capsys, NESTED, line, "unknown constant 'KVM_STATE_NESTED_SVM_VMCB'")


def test_record_used_before_it_is_defined(scratch, capsys):
    # The x86 header follows its outline: put kvm_svm_nested_state_hdr after
    # kvm_nested_state, which uses it.
    outline = "spec/outline/x86.yaml"
    scratch.replace(outline, "      - kvm_svm_nested_state_hdr\n", "      - SWAPPED\n")
    scratch.replace(outline, "      - kvm_nested_state\n", "      - kvm_svm_nested_state_hdr\n")
    scratch.replace(outline, "      - SWAPPED\n", "      - kvm_nested_state\n")
    line = scratch.line_of(NESTED, "type: struct kvm_svm_nested_state_hdr")
    result = expect_error(scratch, capsys, NESTED, line,
                          "struct kvm_svm_nested_state_hdr must be defined before it is used here")
    assert "hint: move its definition earlier in the outline spec/outline/x86.yaml" in result.err


def test_record_used_before_it_is_defined_in_a_header_without_outline(scratch, capsys):
    # Without an outline, the order of the spec files decides: move
    # kvm_svm_nested_state_hdr after kvm_nested_state, which uses it.
    scratch.replace("spec/kvmspec.yaml", "    outline: outline/x86.yaml\n", "")
    (scratch.root / "spec/outline/x86.yaml").unlink()
    text = scratch.read(NESTED)
    start = text.index("  - struct: kvm_svm_nested_state_hdr")
    end = text.index("  - struct: kvm_nested_state\n")
    moved = text[start:end]
    text = text[:start] + text[end:]
    anchor = text.index("  - ioctl: KVM_GET_NESTED_STATE")
    scratch.write(NESTED, text[:anchor] + moved + text[anchor:])
    line = scratch.line_of(NESTED, "type: struct kvm_svm_nested_state_hdr")
    expect_error(scratch, capsys, NESTED, line,
                 "struct kvm_svm_nested_state_hdr must be defined before it is used here")


def test_save_restore_pair_declared_on_one_side_only(scratch, capsys):
    scratch.replace(NESTED, "    pair:\n      restores: KVM_GET_NESTED_STATE\n", "")
    line = scratch.line_of(NESTED, "- ioctl: KVM_GET_NESTED_STATE")
    expect_error(scratch, capsys, NESTED, line,
                 "KVM_GET_NESTED_STATE says it is restored by KVM_SET_NESTED_STATE, "
                 "but KVM_SET_NESTED_STATE does not say the reverse")


def test_unknown_implementation(scratch, capsys):
    scratch.replace(NESTED, "          svm: rejected\n          vmx: ignored",
                    "          svm: rejected\n          tdx: ignored")
    line = scratch.line_of(NESTED, "tdx: ignored")
    expect_error(scratch, capsys, NESTED, line, "unknown implementation or architecture 'tdx'")


# ------------------------------------------------------------------ duplicates


def test_duplicate_name(scratch, capsys):
    add_items(scratch, CAPS, """
  - capability: KVM_CAP_ENABLE_CAP
    value: 300
    since: "7.0"
    check: [vm]
    answer: {kind: boolean}
    doc: A second definition of the same name.
""")
    first = scratch.line_of(CAPS, "- capability: KVM_CAP_ENABLE_CAP\n")
    line = scratch.read(CAPS).count("\n", 0, scratch.read(CAPS).rindex("- capability: KVM_CAP_ENABLE_CAP\n")) + 1
    result = expect_error(scratch, capsys, CAPS, line, "duplicate name 'KVM_CAP_ENABLE_CAP'")
    assert f"first defined at {CAPS}:{first}:" in result.err


def test_duplicate_capability_number(scratch, capsys):
    add_items(scratch, NESTED, """
  - capability: KVM_CAP_EXAMPLE
    header: linux
    value: 157
    since: "7.0"
    check: [vm]
    answer: {kind: boolean}
    doc: Reuses the number of KVM_CAP_NESTED_STATE.
""")
    line = scratch.line_of(NESTED, "- capability: KVM_CAP_EXAMPLE")
    expect_error(scratch, capsys, NESTED, line,
                 "KVM_CAP_EXAMPLE reuses capability number 157 of KVM_CAP_NESTED_STATE")


def test_duplicate_ioctl_number(scratch, capsys):
    add_items(scratch, NESTED, """
  - ioctl: KVM_EXAMPLE
    header: linux
    nr: 0xbf
    dir: w
    type: struct kvm_nested_state
    fd: [vcpu]
    since: "7.0"
    returns: 0 on success.
    doc: Collides with KVM_SET_NESTED_STATE.
""")
    line = scratch.line_of(NESTED, "- ioctl: KVM_EXAMPLE")
    expect_error(scratch, capsys, NESTED, line,
                 "KVM_EXAMPLE has the same ioctl number as KVM_SET_NESTED_STATE (0x4080aebf on x86_64)")


def test_duplicate_enum_value(scratch, capsys):
    scratch.replace(NESTED, "      - name: KVM_STATE_NESTED_FORMAT_SVM\n        value: 1",
                    "      - name: KVM_STATE_NESTED_FORMAT_SVM\n        value: 0")
    line = scratch.line_of(NESTED, "- name: KVM_STATE_NESTED_FORMAT_SVM") + 1  # the value
    expect_error(scratch, capsys, NESTED, line,
                 "KVM_STATE_NESTED_FORMAT_SVM has the same value (0) as KVM_STATE_NESTED_FORMAT_VMX",
                 col=16)


def test_overlapping_flag_bits(scratch, capsys):
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000101")
    line = scratch.line_of(NESTED, "value: 0x00000101")
    expect_error(scratch, capsys, NESTED, line,
                 "flag KVM_STATE_NESTED_GIF_SET overlaps KVM_STATE_NESTED_GUEST_MODE (both set bit 0)", col=16)


# ------------------------------------------------------------------ values that do not fit


def test_flag_that_does_not_fit_its_field(scratch, capsys):
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00010000")
    line = scratch.line_of(NESTED, "value: 0x00010000")
    expect_error(scratch, capsys, NESTED, line, "KVM_STATE_NESTED_GIF_SET = 0x10000 does not fit in __u16")


def test_ioctl_number_beyond_8_bits(scratch, capsys):
    scratch.replace(NESTED, "nr: 0xbf", "nr: 0x1bf")
    line = scratch.line_of(NESTED, "nr: 0x1bf")
    expect_error(scratch, capsys, NESTED, line, "ioctl number 0x1bf does not fit in 8 bits", col=9)


def test_flag_set_that_does_not_fit_its_field(scratch, capsys):
    # kvm_vmx_nested_state_hdr.smm.flags is a __u16; give its set a bit beyond 16.
    scratch.replace(NESTED, "      - name: KVM_STATE_NESTED_SMM_VMXON\n        value: 0x00000002",
                    "      - name: KVM_STATE_NESTED_SMM_VMXON\n        value: 0x00010000")
    scratch.replace(NESTED, "  - flags: kvm_nested_state_smm_flags\n    type: __u16",
                    "  - flags: kvm_nested_state_smm_flags\n    type: __u32")
    text = scratch.read(NESTED)   # the field of kvm_vmx_nested_state_hdr (4.19's kvm_vmx_nested_state has one too)
    at = text.index("- name: flags\n              type: __u16\n              flags: kvm_nested_state_smm_flags",
                    text.index("  - struct: kvm_vmx_nested_state_hdr\n"))
    line = text.count("\n", 0, at) + 1
    expect_error(scratch, capsys, NESTED, line,
                 "field kvm_vmx_nested_state_hdr.smm.flags (__u16) cannot hold KVM_STATE_NESTED_SMM_VMXON "
                 "= 0x10000 of flags kvm_nested_state_smm_flags")


def test_smaller_set_type_fits_a_wider_field(scratch, capsys):
    scratch.replace(NESTED, "  - flags: kvm_vmx_nested_state_flags\n    type: __u32",
                    "  - flags: kvm_vmx_nested_state_flags\n    type: __u16")
    assert scratch.run("validate", capsys=capsys).status == 0


def test_expression_with_undefined_shift(scratch, capsys):
    scratch.replace(NESTED, "value: 0x1000\n    since: \"5.8\"", "value: (1 << 40)\n    since: \"5.8\"")
    line = scratch.line_of(NESTED, "value: (1 << 40)")
    expect_error(scratch, capsys, NESTED, line, "shift by 40 is undefined for int (32 bits)")


# ------------------------------------------------------------------ identifiers


def test_name_that_is_not_a_c_identifier(scratch, capsys):
    scratch.replace(NESTED, "- name: vmcb_pa", "- name: 2vmcb_pa")
    line = scratch.line_of(NESTED, "- name: 2vmcb_pa")
    expect_error(scratch, capsys, NESTED, line, "'2vmcb_pa' is not a valid C identifier")


def test_field_named_like_a_cxx_keyword(scratch, capsys):
    scratch.replace(NESTED, "- name: vmcb_pa", "- name: class")
    line = scratch.line_of(NESTED, "- name: class")
    expect_error(scratch, capsys, NESTED, line, "field 'class' is a C or C++ keyword")


def test_field_named_like_a_python_keyword(scratch, capsys):
    scratch.replace(NESTED, "- name: vmcb_pa", "- name: lambda")
    line = scratch.line_of(NESTED, "- name: lambda")
    expect_error(scratch, capsys, NESTED, line, "field 'lambda' is a Python keyword")


def test_constant_named_like_a_c_keyword(scratch, capsys):
    scratch.replace(BASE, "- const: KVM_API_VERSION", "- const: volatile")
    scratch.replace("spec/outline/linux.yaml", "      - KVM_API_VERSION\n", "      - volatile\n")
    line = scratch.line_of(BASE, "- const: volatile")
    result = expect_error(scratch, capsys, BASE, line, "const 'volatile' is a C or C++ keyword")
    assert result.err.count(": error: ") == 1


# ------------------------------------------------------------------ doc text


def test_doc_text_that_closes_a_c_comment(scratch, capsys):
    scratch.replace(NESTED, "Size in bytes of the VMCB image in the SVM data area.",
                    "Size in bytes of the VMCB image */ in the SVM data area.")
    line = scratch.line_of(NESTED, "*/ in the SVM")
    expect_error(scratch, capsys, NESTED, line, "doc text contains '*/'")


def test_block_doc_text_that_opens_a_c_comment(scratch, capsys):
    scratch.replace(NESTED, "          Guest physical address of the guest hypervisor's VMXON region, or",
                    "          Guest physical address of the /* VMXON region, or")
    line = scratch.line_of(NESTED, "/* VMXON region")
    expect_error(scratch, capsys, NESTED, line, "doc text contains '/*'")


# ------------------------------------------------------------------ layouts


def test_implicit_padding_in_a_new_struct(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="""\
      - {name: a, type: __u32, doc: Four bytes.}
      - {name: b, type: __u64, doc: Eight bytes aligned to 8 on x86_64.}"""))
    line = scratch.line_of(NESTED, "- struct: kvm_example")
    result = expect_error(scratch, capsys, NESTED, line, "struct kvm_example is not 64-bit clean")
    assert "4 byte(s) of implicit padding at offset 4 on x86_64" in result.err
    assert "layout differs between ABIs (16 bytes on x86_64, 12 bytes on i386" in result.err


def test_struct_whose_layout_differs_between_abis(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="""\
      - {name: handle, type: unsigned long, doc: A long is 8 bytes on x86_64 and 4 on i386.}"""))
    line = scratch.line_of(NESTED, "- struct: kvm_example")
    result = expect_error(scratch, capsys, NESTED, line, "struct kvm_example is not 64-bit clean")
    assert "layout differs between ABIs (8 bytes on x86_64, 4 bytes on i386)" in result.err
    assert "implicit padding" not in result.err


def test_exemption_keeps_the_real_layout(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="""\
      - {name: a, type: __u32, doc: Four bytes.}
      - {name: b, type: __u64, doc: Eight bytes.}""").replace(
        "    doc: An example record.\n",
        "    doc: An example record.\n    abi_exemption:\n      reason: Kept as the kernel has it.\n"))
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 0, result.err
    from kvmspec.build import load_model
    record = load_model(scratch.root).by_name["kvm_example"]
    from kvmspec.layout import ARM64, I386, X86_64
    # x86_64 and i386 differ; every LP64 ABI lays it out as x86_64 does
    assert [record.layout(abi).size for abi in (X86_64, I386, ARM64)] == [16, 12, 16]
    assert [(f.offset(X86_64), f.offset(I386)) for f in record.fields] == [(0, 0), (8, 4)]


def test_unneeded_exemption(scratch, capsys):
    scratch.replace(NESTED, "  - struct: kvm_svm_nested_state_hdr\n    since: \"5.8\"\n",
                    "  - struct: kvm_svm_nested_state_hdr\n    since: \"5.8\"\n"
                    "    abi_exemption:\n      reason: Not needed at all here.\n")
    line = scratch.line_of(NESTED, "- struct: kvm_svm_nested_state_hdr")
    expect_error(scratch, capsys, NESTED, line, "has an abi_exemption but does not need one")


def test_flexible_array_that_is_not_last(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="""\
      - {name: n, type: __u32, doc: Count.}
      - {name: entries, type: __u32, array: flexible, doc: The entries.}
      - {name: pad, type: __u32, reserved: true, doc: After the array.}"""))
    line = scratch.line_of(NESTED, "- {name: entries")
    expect_error(scratch, capsys, NESTED, line, "flexible array entries must be the last member")


def test_bit_field_wider_than_its_type(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="""\
      - {name: mode, type: __u8, bits: 9, doc: Too wide.}
      - {name: pad, type: __u8, array: 7, reserved: true, doc: Padding.}"""))
    line = scratch.line_of(NESTED, "- {name: mode")
    expect_error(scratch, capsys, NESTED, line, "a __u8 bit-field cannot be 9 bits wide")


# ------------------------------------------------------------------ schema


def test_missing_required_key(scratch, capsys):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000\n    since: \"5.8\"\n",
                    "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000\n")
    line = scratch.line_of(NESTED, "- const: KVM_STATE_NESTED_SVM_VMCB_SIZE")
    result = expect_error(scratch, capsys, NESTED, line, "missing required key 'since'", col=5)
    assert 'hint: add since: "X.Y"' in result.err


def test_unknown_key(scratch, capsys):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000\n",
                    "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    valeu: 0x1000\n    value: 0x1000\n")
    line = scratch.line_of(NESTED, "valeu:")
    result = expect_error(scratch, capsys, NESTED, line, "unknown key 'valeu'", col=5)
    assert "hint: did you mean 'value'? allowed keys here:" in result.err


def test_wrong_type(scratch, capsys):
    scratch.replace(NESTED, "    check: [system, vm]\n    answer:\n      kind: size",
                    "    check: vm\n    answer:\n      kind: size")
    line = scratch.line_of(NESTED, "check: vm")
    expect_error(scratch, capsys, NESTED, line, "expected a list, found string", col=12)


def test_value_outside_an_enumeration(scratch, capsys):
    scratch.replace(NESTED, "dir: rw", "dir: inout")
    line = scratch.line_of(NESTED, "dir: inout")
    result = expect_error(scratch, capsys, NESTED, line, "'inout' is not allowed here", col=10)
    assert "use one of: none, r, w, rw" in result.err


def test_bad_version(scratch, capsys):
    scratch.replace(NESTED, 'since: "5.13"', 'since: "5.13-rc2"')
    line = scratch.line_of(NESTED, "5.13-rc2")
    expect_error(scratch, capsys, NESTED, line, "'5.13-rc2' is not a kernel release")


def test_bound_instead_of_release_is_rejected(scratch, capsys):
    """"by X.Y" (present by then) was once accepted; every since is now exact."""
    scratch.replace(NESTED, 'since: "5.13"', 'since: "by 5.13"')
    line = scratch.line_of(NESTED, "by 5.13")
    col = scratch.column_of(NESTED, '"by 5.13"')
    result = expect_error(scratch, capsys, NESTED, line, "'by 5.13' is not an exact release", col=col)
    assert "give the first mainline release that had it" in result.err
    generated = scratch.run("generate", capsys=capsys)
    assert generated.status == 1 and "'by 5.13' is not an exact release" in generated.err
    assert not (scratch.root / "generated").exists()


def test_unquoted_version_is_a_float(scratch, capsys):
    scratch.replace(NESTED, 'since: "5.13"', "since: 5.13")
    line = scratch.line_of(NESTED, "since: 5.13")
    expect_error(scratch, capsys, NESTED, line, "'5.13' is a floating-point number")


def test_item_without_a_kind(scratch, capsys):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000\n",
                    "  - value: 0x1000\n    const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n")
    line = scratch.line_of(NESTED, "  - value: 0x1000\n    const:")
    expect_error(scratch, capsys, NESTED, line, "item does not start with its kind", col=5)


def test_unlisted_spec_file(scratch, capsys):
    scratch.write("spec/x86/stray.yaml", "header: x86\ntitle: Stray\ndoc: Not listed.\nitems: []\n")
    expect_error(scratch, capsys, "spec/x86/stray.yaml", 1, "spec file is not listed in spec/kvmspec.yaml")


def test_listed_file_that_does_not_exist(scratch, capsys):
    scratch.replace("spec/kvmspec.yaml", "  - x86/nested-state.yaml\n",
                    "  - x86/nested-state.yaml\n  - x86/missing.yaml\n")
    line = scratch.line_of("spec/kvmspec.yaml", "x86/missing.yaml")
    expect_error(scratch, capsys, "spec/kvmspec.yaml", line, "spec file 'x86/missing.yaml' does not exist")


# ------------------------------------------------------------------ YAML itself


def test_yaml_syntax_error(scratch, capsys):
    scratch.replace(NESTED, "    value: 0x1000\n    since: \"5.8\"", "    value: [0x1000\n    since: \"5.8\"")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert re.search(rf"^{re.escape(NESTED)}:\d+:\d+: error: invalid YAML: ", result.err, re.M)
    assert "Traceback" not in result.err


def test_tab_indentation(scratch, capsys):
    scratch.replace(NESTED, "    value: 0x1000\n    since: \"5.8\"", "    value: 0x1000\n\tsince: \"5.8\"")
    line = scratch.line_of(NESTED, "\tsince")
    expect_error(scratch, capsys, NESTED, line, "tab used for indentation", col=1)


def test_duplicate_key(scratch, capsys):
    scratch.replace(NESTED, "    value: 0x1000\n    since: \"5.8\"", "    value: 0x1000\n    value: 0x2000\n    since: \"5.8\"")
    line = scratch.line_of(NESTED, "value: 0x2000")
    expect_error(scratch, capsys, NESTED, line, "duplicate key 'value'", col=5)


def test_anchors_and_aliases_are_refused(scratch, capsys):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_VMX_VMCS_SIZE\n    value: 0x1000",
                    "  - const: KVM_STATE_NESTED_VMX_VMCS_SIZE\n    value: &size 0x1000")
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000",
                    "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: *size")
    line = scratch.line_of(NESTED, "&size")
    expect_error(scratch, capsys, NESTED, line, "YAML anchors and aliases are not allowed")


def test_python_tags_construct_nothing(scratch, capsys, tmp_path):
    marker = tmp_path / "pwned"
    scratch.replace(NESTED, "    value: 0x1000\n    since: \"5.8\"",
                    f"    value: !!python/object/apply:os.system ['touch {marker}']\n    since: \"5.8\"")
    line = scratch.line_of(NESTED, "!!python")
    expect_error(scratch, capsys, NESTED, line, "explicit YAML tag")
    assert not marker.exists()


def test_every_problem_is_reported_at_once(scratch, capsys):
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000101")
    scratch.replace(BASE, "- name: pad\n        type: __u8\n        array: 64",
                    "- name: pad\n        type: __u8\n        array: 60")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert any(e.startswith(NESTED) and "overlaps" in e for e in errors_of(result))
    assert any(e.startswith(BASE) and "kvm_enable_cap is not 64-bit clean" in e for e in errors_of(result))
    assert result.err.rstrip().endswith("kvmspec: 2 error(s)")


def test_valid_spec_reports_success(scratch, capsys):
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 0
    assert re.match(r"spec is valid: \d+ files, \d+ items \(", result.out)
    assert result.err == ""


def test_one_mistake_gives_one_error(scratch, capsys):
    # kvm_nested_state and both nested-state ioctls depend on this record;
    # only the root cause is reported.
    scratch.replace(NESTED, "array: KVM_STATE_NESTED_SVM_VMCB_SIZE", "array: KVM_STATE_NESTED_SVM_VMCB")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert len(errors_of(result)) == 1, result.err


# ------------------------------------------------------------------ flexible arrays and exit data

MSRS = "spec/x86/msrs.yaml"
RUN = "spec/common/run.yaml"


def test_fills_must_name_the_field_that_counts_the_array(scratch, capsys):
    scratch.replace(MSRS, "    nr: 0x02\n    dir: rw\n    type: \"struct kvm_msr_list\"\n    fd: [system]\n"
                          "    capability: basic\n    since: \"2.6.22\"\n    arg:\n      fills: nmsrs\n",
                    "    nr: 0x02\n    dir: rw\n    type: \"struct kvm_msr_list\"\n    fd: [system]\n"
                    "    capability: basic\n    since: \"2.6.22\"\n    arg:\n      fills: pad\n")
    line = scratch.line_of(MSRS, "fills: pad")
    expect_error(scratch, capsys, MSRS, line, "fills: pad is not the field that counts kvm_msr_list.indices", 14)


def test_partial_needs_a_struct_with_a_counted_flexible_array(scratch, capsys):
    anchor = "    arg:\n      doc: |\n        A buffer starting with struct kvm_nested_state. Userspace sets size\n"
    scratch.replace(NESTED, anchor, anchor.replace("    arg:\n", "    arg:\n      partial: size\n"))
    line = scratch.line_of(NESTED, "partial: size")
    expect_error(scratch, capsys, NESTED, line, "partial: needs a pointer to a struct whose flexible array has counted_by")


def test_counted_by_of_a_fixed_array_must_name_a_field_of_its_record(scratch, capsys):
    scratch.replace(RUN, "                    counted_by: len\n", "                    counted_by: length\n")
    line = scratch.line_of(RUN, "counted_by: length")
    expect_error(scratch, capsys, RUN, line, "counted_by: length is not an integer field of this record")


def test_buffer_length_may_only_use_fields_of_its_record(scratch, capsys):
    scratch.replace(RUN, "buffer: {name: data, bytes: size * count}", "buffer: {name: data, bytes: size * number}")
    line = scratch.line_of(RUN, "bytes: size * number")
    expect_error(scratch, capsys, RUN, line, "bytes: number is not an integer field before data_offset")


def test_buffer_is_only_for_an_integer_field(scratch, capsys):
    scratch.replace(RUN, "                    counted_by: len\n",
                    "                    counted_by: len\n                    buffer: {name: bytes_, bytes: len}\n")
    line = scratch.line_of(RUN, "buffer: {name: bytes_")
    expect_error(scratch, capsys, RUN, line, "buffer: is only for a plain integer field")


# ------------------------------------------------------------------ authoring traps (issue 16)

REGISTERS = "spec/x86/registers.yaml"
S390 = "spec/common/s390.yaml"


def expect_rejected_everywhere(scratch, capsys, change, rel: str, needle: str, message: str) -> str:
    """After change(): validate reports the mistake at the line and column of
    needle (exit 1), generate reports the same and leaves generated/ as it was."""
    assert scratch.run("generate", capsys=capsys).status == 0
    before = scratch.tree()
    change()
    line, col = scratch.line_of(rel, needle), scratch.column_of(rel, needle)
    result = expect_error(scratch, capsys, rel, line, message, col=col)
    generate = scratch.run("generate", capsys=capsys)
    assert generate.status == 1
    assert any(e.startswith(f"{rel}:{line}:{col}:") and message in e for e in errors_of(generate)), generate.err
    assert scratch.tree() == before
    return result.err


def test_constant_without_the_value_that_sizes_an_array(scratch, capsys):
    err = expect_rejected_everywhere(
        scratch, capsys,
        lambda: scratch.replace(REGISTERS, "  - const: KVM_MAX_XCRS\n    value: 16\n", "  - const: KVM_MAX_XCRS\n"),
        REGISTERS, "KVM_MAX_XCRS\n      - name: padding", "KVM_MAX_XCRS is defined without a value, so it cannot size an array")
    definition = scratch.line_of(REGISTERS, "- const: KVM_MAX_XCRS")
    assert f"hint: add value: to const KVM_MAX_XCRS (at {REGISTERS}:{definition}:" in err
    assert len([e for e in err.splitlines() if ": error: " in e]) == 1, err


def test_plain_doc_cut_by_a_comment_sign(scratch, capsys):
    err = expect_rejected_everywhere(
        scratch, capsys,
        lambda: scratch.replace(REGISTERS, "    doc: Number of entries in struct kvm_xcrs.",
                                "    doc: Number of entries in struct kvm_xcrs; #GP is not involved."),
        REGISTERS, "#GP is not involved", "doc text is cut at ' #'")
    assert "the text ends with 'entries in struct kvm_xcrs;'" in err
    assert "hint: write the text as a block (doc: |" in err and "or in quotes" in err


def test_quoted_doc_may_hold_a_comment_sign_and_a_comment_may_follow_a_name(scratch, capsys):
    scratch.replace(REGISTERS, "    doc: Number of entries in struct kvm_xcrs.",
                    '    doc: "Number of entries in struct kvm_xcrs (#GP aside)."  # a real comment')
    scratch.replace(REGISTERS, "  - const: KVM_MAX_XCRS\n", "  - const: KVM_MAX_XCRS   # sizes xcrs\n")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 0, result.err


def test_returns_is_text_checked_for_a_cut_too(scratch, capsys):
    text = scratch.read(S390)
    at = text.index("    returns: 0 on success, -1 with errno set on error.")
    end = text.index("\n", at)
    scratch.write(S390, text[:at] + "    returns: 0 on success, -1 with errno set on error #EINVAL." + text[end:])
    expect_error(scratch, capsys, S390, text[:at].count("\n") + 1, "returns text is cut at ' #'",
                 col=scratch.column_of(S390, "#EINVAL"))


def test_misspelt_struct_gets_the_closest_name(scratch, capsys):
    err = expect_rejected_everywhere(
        scratch, capsys,
        lambda: scratch.replace(NESTED, "type: struct kvm_vmx_nested_state_hdr",
                                "type: struct kvm_vmx_nested_stat_hdr"),
        NESTED, "struct kvm_vmx_nested_stat_hdr", "unknown struct 'kvm_vmx_nested_stat_hdr'")
    assert "hint: did you mean 'kvm_vmx_nested_state_hdr'?" in err


def test_misspelt_names_of_every_kind_get_the_closest_name(scratch, capsys):
    scratch.replace(NESTED, "        flags: kvm_vmx_nested_state_flags", "        flags: kvm_vmx_nested_state_flag")
    scratch.replace(NESTED, "        enum: kvm_nested_state_format", "        enum: kvm_nested_state_formats")
    scratch.replace(NESTED, "      - field: hdr.vmx.flags\n        unknown_bits",
                    "      - field: hdr.vmx.flag\n        unknown_bits")
    scratch.replace(NESTED, "restores: KVM_GET_NESTED_STATE", "restores: KVM_GET_NESTED_STATES")
    scratch.replace(NESTED, "          - KVM_STATE_NESTED_GIF_SET\n      - field: hdr.vmx.smm.flags",
                    "          - KVM_STATE_NESTED_GIF_SE\n      - field: hdr.vmx.smm.flags")
    scratch.replace(NESTED, "    capability: KVM_CAP_NESTED_STATE\n    since: \"4.19\"\n    arg:\n      doc: |\n"
                            "        A buffer starting",
                    "    capability: KVM_CAP_NESTD_STATE\n    since: \"4.19\"\n    arg:\n      doc: |\n"
                    "        A buffer starting")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    lines = result.err.splitlines()
    for wrong, right in [("kvm_vmx_nested_state_flag", "kvm_vmx_nested_state_flags"),
                         ("kvm_nested_state_formats", "kvm_nested_state_format"),
                         ("hdr.vmx.flag", "hdr.vmx.flags"),
                         ("KVM_GET_NESTED_STATES", "KVM_GET_NESTED_STATE"),
                         ("KVM_CAP_NESTD_STATE", "KVM_CAP_NESTED_STATE"),
                         ("KVM_STATE_NESTED_GIF_SE", "KVM_STATE_NESTED_GIF_SET")]:
        at = next(i for i, e in enumerate(lines) if ": error: " in e and (f"'{wrong}'" in e or f" {wrong} " in e))
        assert lines[at + 1].strip().startswith(f"hint: did you mean '{right}'?"), result.err


def test_misspelt_name_in_an_expression_gets_the_closest_name(scratch, capsys):
    add_items(scratch, NESTED, NEW_STRUCT.format(fields="      - name: data\n        type: __u8\n"
                                                        "        array: \"KVM_STATE_NESTED_VMX_VMCS_SIZ * 2\""))
    result = expect_error(scratch, capsys, NESTED, scratch.line_of(NESTED, "KVM_STATE_NESTED_VMX_VMCS_SIZ *"),
                          "unknown name 'KVM_STATE_NESTED_VMX_VMCS_SIZ'")
    assert "did you mean 'KVM_STATE_NESTED_VMX_VMCS_SIZE'?" in result.err


def test_no_suggestion_when_nothing_is_close(scratch, capsys):
    scratch.replace(NESTED, "type: struct kvm_vmx_nested_state_hdr", "type: struct zebra")
    result = expect_error(scratch, capsys, NESTED, scratch.line_of(NESTED, "struct zebra"), "unknown struct 'zebra'")
    assert "did you mean" not in result.err


def test_definition_after_its_default_is_an_error(scratch, capsys):
    """Without header: x86, KVM_DIRTY_LOG_PAGE_OFFSET 64 would follow linux/kvm.h's
    #ifndef default of 0 and redefine it (found by test_missing_pieces)."""
    memory = "spec/common/memory.yaml"
    scratch.replace(memory, "    doc: Page offset of the dirty ring in the vCPU mapping on x86.\n    header: x86\n",
                    "    doc: Page offset of the dirty ring in the vCPU mapping on x86.\n")
    # arm64's own definition would make that a duplicate name instead: take it out
    arm64 = scratch.read("spec/arm64/registers.yaml")
    start = arm64.index("  - const: KVM_DIRTY_LOG_PAGE_OFFSET\n")
    scratch.write("spec/arm64/registers.yaml", arm64[:start] + arm64[arm64.index("\n  - ", start + 1) + 1:])
    text = scratch.read(memory)
    definition = text.count("\n", 0, text.index("  - const: KVM_DIRTY_LOG_PAGE_OFFSET\n    value: 64")) + 1
    default = scratch.line_of(memory, 'c_guard: "!KVM_DIRTY_LOG_PAGE_OFFSET"')
    result = expect_error(scratch, capsys, memory, definition,
                          "KVM_DIRTY_LOG_PAGE_OFFSET is defined after its default "
                          f"(c_guard: \"!KVM_DIRTY_LOG_PAGE_OFFSET\" at {memory}:{default}:", col=12)
    assert "in header 'linux', so C would define it twice" in result.err


def test_value_that_uses_a_removed_name_is_an_error(scratch, capsys):
    """KVM_TRACE_ENABLE is the old name of a removed ioctl; kept without removed:
    it would print a #define of a macro the headers no longer have (found by
    test_missing_pieces)."""
    rel = "spec/common/deprecated.yaml"
    text = scratch.read(rel)
    start = text.index("  - const: KVM_TRACE_ENABLE\n    removed:")
    end = text.index("    value: __KVM_DEPRECATED_MAIN_W_0x06", start)
    scratch.write(rel, text[:start] + "  - const: KVM_TRACE_ENABLE\n" + text[end:])
    expect_error(scratch, capsys, rel, scratch.line_of(rel, "- const: KVM_TRACE_ENABLE"),
                 "const KVM_TRACE_ENABLE uses ioctl __KVM_DEPRECATED_MAIN_W_0x06, which is removed in 6.8", col=12)


# ------------------------------------------------------------------ moved definitions
ARM64_REGS = "spec/arm64/registers.yaml"


def test_a_removed_definition_may_share_its_name_with_its_successor(scratch, capsys):
    # KVM_REG_SIZE left arm64's asm/kvm.h in 6.14, the release linux/kvm.h got it.
    assert scratch.run("validate", capsys=capsys).status == 0


def test_a_definition_removed_after_its_successor_came_is_a_duplicate(scratch, capsys):
    # arm64's own KVM_REG_SIZE, removed only in 6.15, would overlap linux/kvm.h's (there since
    # 6.14 for everyone): two definitions of one name in the same release
    scratch.write(ARM64_REGS, scratch.read(ARM64_REGS) + """
  - macro: KVM_REG_SIZE
    params: [id]
    body: "(1U << (((id) & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT))"
    since: "3.11"
    doc: The size of a register.
    removed:
      since: "6.15"
      moved_to: linux/kvm.h
      doc: Defined by linux/kvm.h for everyone.
""")
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert "error: duplicate name 'KVM_REG_SIZE'" in result.err


# ------------------------------------------------------------------ per-architecture releases in arch: lists

GUEST_DEBUG_ARCH = '    arch: [x86, {arm64: "4.3"}, {s390: "3.16"}, {ppc: "3.10"}, {riscv: "6.10"}, {loongarch: "6.10"}]\n    evidence: "Before'
VCPU = "spec/common/vcpu.yaml"


def break_guest_debug_riscv(scratch, entry: str) -> tuple[int, int]:
    """Write `entry` for riscv in KVM_SET_GUEST_DEBUG's arch: list; the line and the column of the entry."""
    scratch.replace(VCPU, GUEST_DEBUG_ARCH, GUEST_DEBUG_ARCH.replace('{riscv: "6.10"}', entry))
    line = scratch.line_of(VCPU, GUEST_DEBUG_ARCH.replace('{riscv: "6.10"}', entry).split("\n")[0])
    text = scratch.read(VCPU).splitlines()[line - 1]
    return line, text.index(entry) + 1


def test_misspelt_architecture_with_a_release(scratch, capsys):
    line, col = break_guest_debug_riscv(scratch, '{riscvv: "6.10"}')
    result = expect_error(scratch, capsys, VCPU, line, "unknown architecture 'riscvv'", col=col + 1)
    assert "did you mean 'riscv'?" in result.err


def test_architecture_release_before_the_items_since(scratch, capsys):
    line, col = break_guest_debug_riscv(scratch, '{riscv: "2.6.29"}')
    result = expect_error(scratch, capsys, VCPU, line,
                          "riscv cannot have it from 2.6.29: that is before the item's own since (2.6.30)",
                          col=col + len('{riscv: '))
    assert "give riscv a release from 2.6.30 on" in result.err


def test_architecture_release_equal_to_the_items_since(scratch, capsys):
    line, _ = break_guest_debug_riscv(scratch, '{riscv: "2.6.30"}')
    expect_error(scratch, capsys, VCPU, line, "riscv has it from 2.6.30, the item's own since")


def test_architecture_release_that_is_not_a_release(scratch, capsys):
    line, col = break_guest_debug_riscv(scratch, '{riscv: "6.x"}')
    result = expect_error(scratch, capsys, VCPU, line, "'6.x' is not a kernel release", col=col + len('{riscv: '))
    assert "the only valid value is 'all'" not in result.err   # not the other branch of the oneOf


def test_two_architectures_in_one_entry(scratch, capsys):
    line, col = break_guest_debug_riscv(scratch, '{riscv: "6.10", mips: "6.11"}')
    expect_error(scratch, capsys, VCPU, line, "one key expected here, found 2", col=col)


def test_enum_value_architecture_release_before_its_since(scratch, capsys):
    # KVM_MP_STATE_STOPPED exists from 3.17; riscv cannot have had it in 3.16
    scratch.replace(VCPU, '        arch: [s390, arm64, {riscv: "5.16"}]',
                    '        arch: [s390, arm64, {riscv: "3.16"}]')
    line = scratch.line_of(VCPU, '{riscv: "3.16"}')
    expect_error(scratch, capsys, VCPU, line, "riscv cannot have it from 3.16: that is before the item's own since (3.17)")


# ------------------------------------------------------------------ header_defects


MEMORY = "spec/common/memory.yaml"


def test_header_defect_that_ends_before_it_starts(scratch, capsys):
    old = '''          - since: "5.11"
            until: "5.13"
            wrote: BIT(0)'''
    scratch.replace(MEMORY, old, old.replace('until: "5.13"', 'until: "5.11"'))
    line = scratch.line_of(MEMORY, 'until: "5.11"')
    expect_error(scratch, capsys, MEMORY, line, "header_defects: until 5.11 is not after since 5.11", col=20)


def test_header_defect_without_what_the_kernel_wrote(scratch, capsys):
    old = '''            until: "5.13"
            wrote: BIT(0)
'''
    scratch.replace(MEMORY, old, '''            until: "5.13"
''')
    line = scratch.line_of(MEMORY, 'until: "5.13"') - 1
    expect_error(scratch, capsys, MEMORY, line, "wrote")
