"""`kvmspec compat --history` over record layouts: real precedents from KVM's history.

Each case is a change KVM shipped: a reserved array that shrank when a field
took its bytes, a padding byte renamed, an accidental i386 layout change, a
struct that grew and took its ioctl number with it. Expected numbers are
worked out from the C layout rules and the _IOC encoding here, not read
back from the code under test.
"""

from __future__ import annotations

import pytest

from conftest import REPO, Scratch
from kvmspec.build import load_model
from kvmspec.compat.history import replay
from kvmspec.compat.layouts import LayoutHistory, layout_changes
from kvmspec.diagnostics import SpecError
from kvmspec.layout import ABIS, ABI_INDEX
from kvmspec.model import Version
from kvmspec.view import View


@pytest.fixture(scope="module")
def model():
    return load_model(REPO)


@pytest.fixture(scope="module")
def history(model):
    return replay(model)


def v(text: str) -> Version:
    return Version.parse(text)


def abi(name: str):
    return ABIS[ABI_INDEX[name]]


def record(model, name: str, arch: str = "x86"):
    return model.lookup(name, arch)


def layout_findings(history, subject: str, release: str):
    return [f for r, f in history.findings
            if f.rule.id == "layout-changed" and f.subject == subject and r.release == release]


def ioc_write(nr: int, size: int) -> int:
    """_IOW(KVMIO, nr, size) on the asm-generic encoding: write = 1 in the top two bits."""
    return (1 << 30) | (size << 16) | (0xAE << 8) | nr


def test_kvm_irqfd_pad_shrank_when_resamplefd_took_its_first_bytes(model, history):
    """3.7: resamplefd took 4 of the 20 reserved bytes; size, offsets and KVM_IRQFD stay."""
    layouts = LayoutHistory(model)
    irqfd = record(model, "kvm_irqfd")
    for release in ("3.6", "3.7"):
        shape = layouts.shape(irqfd, v(release), abi("i386"))
        assert shape.size == 4 + 4 + 4 + 20
    old = {p.name: (p.offset, p.size) for p in layouts.shape(irqfd, v("3.6"), abi("x86_64")).places}
    new = {p.name: (p.offset, p.size) for p in layouts.shape(irqfd, v("3.7"), abi("x86_64")).places}
    assert old["pad"] == (12, 20) and "resamplefd" not in old
    assert new["resamplefd"] == (12, 4) and new["pad"] == (16, 16)
    assert layout_findings(history, "kvm_irqfd", "3.7") == []


def test_interrupt_shadow_took_a_padding_byte_and_nmi_stayed(model, history):
    """2.6.35: kvm_vcpu_events.interrupt.pad became shadow; nmi stays at 12 on both x86 ABIs."""
    layouts = LayoutHistory(model)
    events = record(model, "kvm_vcpu_events")
    for release in ("2.6.34", "2.6.35"):
        for name in ("x86_64", "i386"):
            places = {p.name: p for p in layouts.shape(events, v(release), abi(name)).places}
            # exception: 3 bytes, a padding byte, error_code (8); interrupt: 4 bytes
            assert places["nmi.injected"].offset == 8 + 4
    assert layout_findings(history, "kvm_vcpu_events", "2.6.35") == []


def test_nested_state_renames_are_a_recorded_source_break(history):
    """5.2 named the header union hdr and the data area data.vmx, at the same offsets."""
    [finding] = layout_findings(history, "kvm_nested_state", "5.2")
    assert "vmx is now hdr.vmx" in finding.message and "data is now data.vmx" in finding.message
    assert "moved" not in finding.message and "size" not in finding.message
    assert finding.explanation(v("5.2")) is not None


def test_kvm_run_padding_growth_is_not_a_finding(model, history):
    """kvm_run grew at 3.4 (sync regs) and 4.1 (their padding doubled): it is mapped, not copied by size."""
    layouts = LayoutHistory(model)
    run = record(model, "kvm_run")
    assert layouts.shape(run, v("4.0"), abi("x86_64")).size < layouts.shape(run, v("4.1"), abi("x86_64")).size
    assert layout_findings(history, "kvm_run", "4.1") == []
    assert layout_findings(history, "kvm_run", "3.4") == []


def test_accidental_i386_move_of_system_event_flags(history):
    """5.18: flags joined a union after the new ndata; on i386, where a __u64 aligns to 4, it moved 4 -> 8."""
    [finding] = layout_findings(history, "kvm_run", "5.18")
    assert finding.abis == ("i386",)
    # kvm_run's exit union starts at 32; system_event.flags sat after the 4-byte type
    assert "system_event.flags moved from offset 36 to 40" in finding.message
    exc = finding.explanation(v("5.18"))
    assert exc is not None and exc.abis == ("i386",)


def test_guest_debug_grew_and_changed_its_ioctl_number_on_arm64(history):
    """4.3: arm64's kvm_guest_debug_arch got the debug registers; KVM_SET_GUEST_DEBUG took the new size.

    The arm64 half of 4.2.8's headers still has an empty kvm_guest_debug_arch, so
    nothing changes at 4.2.
    """
    assert layout_findings(history, "kvm_guest_debug", "4.2") == []
    [finding] = layout_findings(history, "kvm_guest_debug", "4.3")
    assert finding.abis == ("arm64",)
    # control (4) + pad (4) + 16 bcr/bvr/wcr/wvr pairs of __u64 (4 * 16 * 8)
    new_size = 8 + 4 * 16 * 8
    assert f"size 8 -> {new_size}" in finding.message
    assert f"KVM_SET_GUEST_DEBUG {ioc_write(0x9b, 8):#x} -> {ioc_write(0x9b, new_size):#x}" in finding.message
    assert finding.explanation(v("4.3")) is not None


def test_guest_debug_grew_on_powerpc_in_3_10_and_on_s390_in_3_16(history):
    """powerpc's breakpoint table came in 3.10 (not 3.12), s390's in 3.16 (not 3.15)."""
    assert layout_findings(history, "kvm_guest_debug", "3.12") == []
    assert layout_findings(history, "kvm_guest_debug", "3.15") == []
    [ppc] = layout_findings(history, "kvm_guest_debug", "3.10")
    assert set(ppc.abis) == {"ppc64", "ppc64le"}
    # control (4) + pad (4) + 16 entries of {__u64 addr; __u32 type; __u32 reserved;}
    assert f"size 8 -> {8 + 16 * 16}" in ppc.message
    [s390] = layout_findings(history, "kvm_guest_debug", "3.16")
    # control, pad, then nr_hw_bp (4), pad (4) and a 64-bit pointer
    assert s390.abis == ("s390x",) and f"size 8 -> {8 + 4 + 4 + 8}" in s390.message


def test_s390_sieic_held_the_psw_until_2_6_33(model, history):
    """Up to 2.6.32 s390_sieic was {u8 icptcode; u64 mask; u64 addr; u16 ipa; u32 ipb} (2.6.32's kvm.h)."""
    layouts = LayoutHistory(model)
    run = record(model, "kvm_run", "s390")
    old = {p.name: p.offset for p in layouts.shape(run, v("2.6.32"), abi("s390x")).places}
    new = {p.name: p.offset for p in layouts.shape(run, v("2.6.33"), abi("s390x")).places}
    # union at 32 in 2.6.32; mask aligned to 8 after the code byte
    assert (old["s390_sieic.mask"], old["s390_sieic.addr"], old["s390_sieic.ipa"]) == (40, 48, 56)
    # 2.6.33: psw_mask and psw_addr (16 bytes) before the union, which now starts at 48
    assert "s390_sieic.mask" not in new and (new["psw_mask"], new["s390_sieic.ipa"]) == (32, 50)
    findings = layout_findings(history, "kvm_run", "2.6.33")
    assert findings and all(f.explanation(v("2.6.33")) is not None for f in findings)


def test_every_layout_finding_is_explained_and_the_counts(history):
    layout = [(r, f) for r, f in history.findings if f.rule.id == "layout-changed"]
    assert layout and all(f.explanation(r) is not None for r, f in layout)
    assert {f.subject for _, f in layout} >= {"kvm_run", "kvm_hyperv_exit", "kvm_sev_cmd", "kvm_fpu"}


def test_removing_a_recorded_layout_exception_reports_the_break(tmp_path):
    """Without its abi_exceptions entry, 5.8's i386 move of kvm_hyperv_exit is an error of --history."""
    scratch = Scratch(tmp_path / "repo")
    text = scratch.read("spec/x86/hyperv.yaml")
    start = text.index("    abi_exceptions:\n      - rule: layout-changed\n        since: \"5.8\"")
    end = text.index("    doc:", start)
    scratch.write("spec/x86/hyperv.yaml", text[:start] + text[end:])
    history = replay(load_model(scratch.root))
    errors = [(r.release, f) for r, f in history.unexplained() if f.rule.id == "layout-changed"]
    assert [(r, f.subject, f.abis) for r, f in errors] == [("5.8", "kvm_hyperv_exit", ("i386",))]
    assert "u.synic.msr moved from offset 4 to 8" in errors[0][1].message
    assert history.errors == 1


def test_an_exception_for_other_abis_does_not_explain(tmp_path):
    """An entry limited to x86_64 does not explain a move seen on i386."""
    scratch = Scratch(tmp_path / "repo")
    scratch.replace("spec/x86/hyperv.yaml", "        since: \"5.8\"\n        abis: [i386]",
                    "        since: \"5.8\"\n        abis: [x86_64]")
    history = replay(load_model(scratch.root))
    assert [(r.release, f.subject) for r, f in history.unexplained()] == [("5.8", "kvm_hyperv_exit")]


def test_unknown_abi_in_an_exception_is_an_error_at_its_place(tmp_path):
    scratch = Scratch(tmp_path / "repo")
    scratch.replace("spec/x86/hyperv.yaml", "abis: [i386]", "abis: [x86_32]")
    line = scratch.line_of("spec/x86/hyperv.yaml", "abis: [x86_32]")
    col = scratch.column_of("spec/x86/hyperv.yaml", "x86_32")
    with pytest.raises(SpecError) as error:
        load_model(scratch.root)
    assert f"spec/x86/hyperv.yaml:{line}:{col}: error: unknown ABI 'x86_32'" in str(error.value)


def test_cached_layouts_are_the_views_layouts(model):
    """Layouts cached per span equal View.layout computed afresh at every release, on each layout class."""
    layouts = LayoutHistory(model)
    rels = [v(r) for r in ("2.6.33", "2.6.34", "2.6.35", "3.6", "3.7", "4.1", "4.12", "5.7", "5.8", "6.8", "6.9",
                           "7.3")]
    asked = 0
    for name, arch in (("kvm_run", "x86"), ("kvm_vcpu_events", "x86"), ("kvm_irqfd", "x86"),
                       ("kvm_hyperv_exit", "x86"), ("kvm_sync_regs", "s390"), ("kvm_sev_cmd", "x86")):
        rec = record(model, name, arch)
        for release in rels:
            if not rec.exists_at(release):
                continue
            for a in ABIS:
                if a.arch != arch:
                    continue
                fresh = View(model, release, arch).layout(rec, a)
                shape = layouts.shape(rec, release, a)
                asked += 1
                assert (shape.size, shape.align) == (fresh.size, fresh.align), (name, release, a.name)
    assert layouts.computed < asked


def test_layout_replay_finds_nothing_in_a_span_without_history(model):
    """A transition where no field history changes asks for no layout at all."""
    layouts = LayoutHistory(model)
    assert list(layout_changes(layouts, v("6.10"), v("6.11"))) == []
