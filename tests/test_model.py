"""The model's arithmetic: C expressions, record layouts and ioctl numbers."""

from __future__ import annotations

import pytest

from kvmspec import expr
from kvmspec.layout import I386, SCALARS, X86_64, Member, ioc, record_layout


def evaluate(text: str, long_bits: int = 64, names: dict | None = None) -> int:
    ev = expr.Evaluator(long_bits, lambda n: (names or {}).get(n))
    return ev.evaluate(expr.parse(text)).value


@pytest.mark.parametrize("text,value64,value32", [
    ("0xAE", 0xAE, 0xAE),
    ("(1 << 3)", 8, 8),
    ("(-1ul)", 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF),
    ("(-2ul)", 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFE),
    ("((__u32)(-1))", 0xFFFFFFFF, 0xFFFFFFFF),
    ("1ULL << 63", 1 << 63, 1 << 63),
    ("~0", -1, -1),
    ("~0u", 0xFFFFFFFF, 0xFFFFFFFF),
    ("0x80000000", 0x80000000, 0x80000000),      # unsigned int: does not fit int
    ("-1 < 0u", 0, 0),                           # -1 converts to unsigned
    ("-1L < 0u", 1, 0),                          # long holds every unsigned int only on x86_64
    ("7 / -2", -3, -3),                          # C truncates toward zero
    ("7 % -2", 1, 1),
    ("1 ? 2 : 3", 2, 2),
    ("_BITULL(40)", 1 << 40, 1 << 40),
    ("010", 8, 8),
])
def test_c_semantics(text, value64, value32):
    assert evaluate(text, 64) == value64
    assert evaluate(text, 32) == value32


def test_names_and_function_like_macros():
    size_mask = expr.Value(0x00F0000000000000, expr.int_types(64)["unsigned long long"])
    shift = expr.Value(52, expr.int_types(64)["int"])
    body = expr.parse("(1U << (((id) & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT))")
    ev = expr.Evaluator(64, {"KVM_REG_SIZE_MASK": size_mask, "KVM_REG_SIZE_SHIFT": shift}.get,
                        {"KVM_REG_SIZE": expr.FunctionMacro(("id",), body)})
    assert ev.evaluate(expr.parse("KVM_REG_SIZE(0x0030000000000000ULL)")).value == 8


@pytest.mark.parametrize("text,message", [
    ("offsetof(core, pc)", "offsetof needs a struct or union"),
    ("offsetof(struct core, 1)", "offsetof needs a member"),
    ("1 << 32", "shift by 32 is undefined for int"),
    ("1 / 0", "division by zero"),
    ("UNKNOWN + 1", "unknown name 'UNKNOWN'"),
    ("(1 + 2", "expected ')'"),
    ("1 +", "expected a number"),
    ("08", "not a valid octal number"),
    ("1 $ 2", "unexpected character '$'"),
    ("F(1)", "unknown function-like macro 'F'"),
])
def test_expression_errors(text, message):
    with pytest.raises(expr.ExprError) as info:
        evaluate(text)
    assert message in info.value.message


def test_a_call_of_a_macro_defined_elsewhere_is_reported_by_the_caller():
    class Elsewhere(expr.ExprError):
        pass

    def unknown_call(name):
        if name == "__GENMASK":
            raise Elsewhere(f"{name} is defined elsewhere")
    ev = expr.Evaluator(64, lambda n: None, unknown_call=unknown_call)
    with pytest.raises(Elsewhere):
        ev.evaluate(expr.parse("__GENMASK(31, 16)"))
    with pytest.raises(expr.ExprError) as info:
        ev.evaluate(expr.parse("GENMASK(31, 16)"))
    assert "unknown function-like macro 'GENMASK'" in info.value.message


# arm64's KVM_REG_ARM_CORE_REG(name): the member designator goes through a macro parameter.
CORE_REG = expr.FunctionMacro(("name",), expr.parse("(offsetof(struct kvm_regs, name) / sizeof(__u32))"))


def core_reg_evaluator(seen: list) -> expr.Evaluator:
    offsets = {("regs", "pc"): 256, ("fp_regs", "vregs", 31): 832}

    def offsetof(type_text, path):
        seen.append((type_text, path))
        return offsets.get(path, f"no member {path}")
    return expr.Evaluator(64, lambda n: expr.Value(4, expr.int_types(64)["int"]) if n == "K" else None,
                          {"KVM_REG_ARM_CORE_REG": CORE_REG}, lambda t: 4, offsetof)


def test_offsetof_takes_a_member_designator_through_a_macro_parameter():
    seen: list = []
    ev = core_reg_evaluator(seen)
    assert ev.evaluate(expr.parse("KVM_REG_ARM_CORE_REG(regs.pc)")).value == 64
    assert ev.evaluate(expr.parse("KVM_REG_ARM_CORE_REG(fp_regs.vregs[27 + K])")).value == 208
    assert seen == [("struct kvm_regs", ("regs", "pc")), ("struct kvm_regs", ("fp_regs", "vregs", 31))]


def test_offsetof_of_an_unknown_member_says_which():
    ev = core_reg_evaluator([])
    with pytest.raises(expr.ExprError) as info:
        ev.evaluate(expr.parse("KVM_REG_ARM_CORE_REG(regs.lr)"))
    assert "no member ('regs', 'lr')" in info.value.message


@pytest.mark.parametrize("text,message", [
    ("regs.pc + 1", "only name members inside offsetof"),
    ("offsetof(kvm_regs, pc)", "offsetof needs a struct or union"),
    ("offsetof(struct kvm_regs, 1 + 2)", "offsetof needs a member"),
])
def test_offsetof_misuse_is_an_error(text, message):
    with pytest.raises(expr.ExprError) as info:
        core_reg_evaluator([]).evaluate(expr.parse(text))
    assert message in info.value.message


def test_offsetof_in_python_passes_the_designator_as_text():
    assert expr.to_python(CORE_REG.body, CORE_REG.params) == \
        "_cdiv(_offsetof(kvm_regs, name), ctypes.sizeof(ctypes.c_uint), False)"
    assert expr.to_python(expr.parse("KVM_REG_ARM_CORE_REG(fp_regs.vregs[3])")) == \
        "KVM_REG_ARM_CORE_REG('fp_regs.vregs[3]')"


# arm64's ARM64_SYS_REG_SHIFT_MASK(x, n) pastes n into the names of a field's constants.
SHIFT_MASK = expr.FunctionMacro(("x", "n"), expr.parse(
    "(((x) << KVM_REG_ARM64_SYSREG_ ## n ## _SHIFT) & KVM_REG_ARM64_SYSREG_ ## n ## _MASK)"))


def test_token_pasting_builds_the_name_from_the_argument_spelling():
    values = {"KVM_REG_ARM64_SYSREG_CRN_SHIFT": 7, "KVM_REG_ARM64_SYSREG_CRN_MASK": 0x780}
    int_type = expr.int_types(64)["int"]
    ev = expr.Evaluator(64, lambda n: expr.Value(values[n], int_type) if n in values else None,
                        {"ARM64_SYS_REG_SHIFT_MASK": SHIFT_MASK})
    assert ev.evaluate(expr.parse("ARM64_SYS_REG_SHIFT_MASK(0x1f, CRN)")).value == 0x780
    assert ev.evaluate(expr.parse("ARM64_SYS_REG_SHIFT_MASK(14, CRN)")).value == 0x700
    with pytest.raises(expr.ExprError) as info:
        ev.evaluate(expr.parse("ARM64_SYS_REG_SHIFT_MASK(1, OP9)"))
    assert "unknown name 'KVM_REG_ARM64_SYSREG_OP9_SHIFT'" in info.value.message


def test_a_pasted_argument_is_spelling_not_a_reference():
    use = expr.parse("ARM64_SYS_REG_SHIFT_MASK(op0, OP0)")
    macros = {"ARM64_SYS_REG_SHIFT_MASK": SHIFT_MASK}
    assert [n.name for n in expr.names(use, macros)] == ["ARM64_SYS_REG_SHIFT_MASK", "op0"]
    assert [n.name for n in expr.names(use)] == ["ARM64_SYS_REG_SHIFT_MASK", "op0", "OP0"]


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(expr.ExprError):
        evaluate("(" * 2000 + "1" + ")" * 2000)


def members(*names: str, abi=X86_64) -> list[Member]:
    return [Member(SCALARS[n].size(abi), SCALARS[n].align(abi)) for n in names]


def test_u64_alignment_differs_on_i386():
    fields = ("__u32", "__u64")
    amd64 = record_layout(members(*fields), is_union=False)
    i386 = record_layout(members(*fields, abi=I386), is_union=False)
    assert (amd64.size, [p.offset for p in amd64.placements], amd64.holes) == (16, [0, 8], ((4, 4),))
    assert (i386.size, [p.offset for p in i386.placements], i386.holes) == (12, [0, 4], ())


def test_tail_padding_is_a_hole():
    layout = record_layout(members("__u64", "__u8"), is_union=False)
    assert layout.size == 16 and layout.holes == ((9, 7),)


def test_union_size_is_the_largest_member_rounded_to_alignment():
    layout = record_layout([Member(1, 1, 5), Member(4, 4)], is_union=True)
    assert (layout.size, layout.align, layout.holes) == (8, 4, ((5, 3),))


def test_bit_fields_pack_into_their_unit():
    # struct { __u8 a:3; __u8 b:1; __u8 c:7; } -> c does not fit the first byte
    layout = record_layout([Member(1, 1, 1, 3), Member(1, 1, 1, 1), Member(1, 1, 1, 7)], is_union=False)
    assert [p.bit_offset for p in layout.placements] == [0, 3, 8]
    assert layout.size == 2


def test_zero_length_and_flexible_arrays_take_no_space():
    layout = record_layout([Member(4, 4), Member(8, 8, 0)], is_union=False)
    assert layout.size == 8 and layout.placements[1].offset == 8


def test_ioctl_encoding_matches_the_kernel():
    assert ioc("none", 0xAE, 0x00, 0) == 0xAE00                     # KVM_GET_API_VERSION
    assert ioc("w", 0xAE, 0xA3, 104) == 0x4068AEA3                  # KVM_ENABLE_CAP
    assert ioc("rw", 0xAE, 0xBE, 128) == 0xC080AEBE                 # KVM_GET_NESTED_STATE
    assert ioc("r", 0xAE, 0x99, 0) == 0x8000AE99


def test_arm64_core_register_ids_are_offsets_in_kvm_regs():
    """KVM_REG_ARM_CORE_REG() on the spec's arm64 struct kvm_regs, values as clang computes
    them for aarch64 from the kernel's header (offsetof(struct kvm_regs, m) / 4)."""
    from pathlib import Path

    from kvmspec.build import Builder
    from kvmspec.layout import ABI_INDEX, ABIS

    builder = Builder(Path(__file__).resolve().parent.parent)
    builder.build()
    arm64 = builder.evaluator(ABIS[ABI_INDEX["arm64"]])
    core = {"regs.pc": 0x40, "regs.regs[30]": 0x3c, "sp_el1": 0x44, "spsr[KVM_SPSR_FIQ]": 0x50,
            "fp_regs.vregs[31]": 0xd0, "fp_regs.fpcr": 0xd5}
    for member, index in core.items():
        assert arm64.evaluate(expr.parse(f"KVM_REG_ARM_CORE_REG({member})")).value == index, member
    assert arm64.evaluate(expr.parse("ARM64_SYS_REG(3, 0, 0, 0, 5)")).value == 0x603000000013C005
    with pytest.raises(expr.ExprError) as info:   # x86's struct kvm_regs has no such member
        builder.evaluator(X86_64).evaluate(expr.parse("KVM_REG_ARM_CORE_REG(regs.pc)"))
    assert "has no member 'regs'" in info.value.message



def test_a_default_holds_until_the_architecture_defines_its_own():
    """linux/kvm.h's #ifndef KVM_DIRTY_LOG_PAGE_OFFSET default (0) is what arm64 had until
    its asm/kvm.h defined 64 in 6.2."""
    from pathlib import Path

    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View

    model = load_model(Path(__file__).resolve().parent.parent)

    def offsets(release: str) -> list:
        view = View(model, Version.parse(release), "arm64")
        return [(i.header, i.expr) for i in view.items if i.name == "KVM_DIRTY_LOG_PAGE_OFFSET"]
    assert offsets("6.1") == [("linux", "0")]
    assert offsets("6.2") == [("arm64", "64")]


def test_version_pattern_is_the_schemas():
    """The build checks releases with model.VERSION_PATTERN rather than reading the
    schema: it must be the schema's own pattern for a release."""
    from kvmspec import schema
    from kvmspec.model import VERSION_PATTERN
    assert VERSION_PATTERN == schema.schema_document()["$defs"]["version"]["pattern"]
