"""The rules over meaning, the invariants `kvmspec validate` checks in one revision, and `compat --history`.

Each rule class has a case built from a real KVM change (named in the
docstring): the old spec is the current one with the change undone, or the
new one is the current one with the change KVM avoided made.
"""

from __future__ import annotations

import json

import pytest

from conftest import Scratch, run_kvmspec
from kvmspec.build import load_model
from kvmspec.compat import compare
from kvmspec.compat.history import replay
from kvmspec.diagnostics import SpecError
from test_compat import GPAT_CAP, NESTED, add_gpat_flag, add_items

EVENTS = "spec/x86/events.yaml"
MSRS = "spec/x86/msrs.yaml"
CAPS = "spec/common/capabilities.yaml"
HYPERV = "spec/x86/hyperv.yaml"
IRQ = "spec/common/irq.yaml"
RUN = "spec/common/run.yaml"
VM = "spec/x86/vm.yaml"


@pytest.fixture
def pair(tmp_path):
    return Scratch(tmp_path / "old"), Scratch(tmp_path / "new")


def findings(old: Scratch, new: Scratch):
    return compare(load_model(old.root, invariants=False), load_model(new.root, invariants=False))


def only(found, rule: str):
    assert [f.rule.id for f in found] == [rule], [str(f) for f in found]
    return found[0]


def validate_errors(s: Scratch) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_model(s.root)
    return [str(d) for d in info.value.diagnostics]


# ------------------------------------------------------------------ emissions behind an opt-in

PAYLOAD_OPT_IN = "        values: [KVM_VCPUEVENT_VALID_PAYLOAD]\n        requires: KVM_CAP_EXCEPTION_PAYLOAD\n"


def test_payload_made_default_is_opt_in_dropped(pair):
    """KVM_CAP_EXCEPTION_PAYLOAD (4.20): KVM_VCPUEVENT_VALID_PAYLOAD is emitted only after the opt-in."""
    old, new = pair
    new.replace(EVENTS, PAYLOAD_OPT_IN, "        values: [KVM_VCPUEVENT_VALID_PAYLOAD]\n")
    f = only(findings(old, new), "opt-in-dropped")
    assert f.level == "error" and f.mark.path == EVENTS
    text = str(f)
    assert "KVM_GET_VCPU_EVENTS emitted KVM_VCPUEVENT_VALID_PAYLOAD in flags only after KVM_CAP_EXCEPTION_PAYLOAD " \
           "was enabled and now emits it without any opt-in on vmx, svm" in text
    assert "KVM_SET_VCPU_EVENTS rejects it on older kernels and on VMs without KVM_CAP_EXCEPTION_PAYLOAD" in text
    # the same spec also fails validate: 2.6.33 to 4.19 reject the bit as unknown
    errors = validate_errors(new)
    assert any(e.startswith(f"{EVENTS}:") and "KVM_GET_VCPU_EVENTS emits KVM_VCPUEVENT_VALID_PAYLOAD in flags on "
               "vmx, svm from 4.20 without an opt-in" in e for e in errors), errors


def test_payload_moved_to_another_capability(pair):
    """The gate changed from KVM_CAP_EXCEPTION_PAYLOAD to another capability: opt-in-dropped too."""
    old, new = pair
    new.replace(EVENTS, PAYLOAD_OPT_IN, "        values: [KVM_VCPUEVENT_VALID_PAYLOAD]\n"
                                        "        requires: KVM_CAP_X86_TRIPLE_FAULT_EVENT\n")
    f = only(findings(old, new), "opt-in-dropped")
    assert "now emits it only after KVM_CAP_X86_TRIPLE_FAULT_EVENT instead" in str(f)


# ------------------------------------------------------------------ validation


def test_msr_filter_flags_check_is_a_tightening(pair):
    """KVM_X86_SET_MSR_FILTER ignored unknown bits of flags from 5.10 until 5.19 (cf5029d5dd7c)."""
    old, new = pair
    old.replace(MSRS, "      - field: flags\n        unknown_bits: rejected\n        since: \"5.19\"\n",
                "      - field: flags\n        unknown_bits: ignored\n")
    f = only(findings(old, new), "validation-tightened")
    assert f.mark.path == MSRS
    assert "KVM_X86_SET_MSR_FILTER now rejects unknown bits in flags with EINVAL on vmx, svm, where it used to " \
           "ignore them" in str(f)
    assert findings(new, new) == []


def test_vmx_starting_to_reject_svm_bits_is_a_tightening_on_vmx_only(pair):
    """The gPAT thread: VMX ignores SVM's bits in kvm_nested_state.flags; making it reject them breaks VMX only."""
    old, new = pair
    new.replace(NESTED, "        foreign_bits:\n          svm: rejected\n          vmx: ignored\n",
                "        foreign_bits: rejected\n")
    f = only(findings(old, new), "validation-tightened")
    text = str(f)
    assert "KVM_SET_NESTED_STATE now rejects bits of other implementations in flags with EINVAL on vmx," in text
    assert "state that KVM_GET_NESTED_STATE saved there cannot be restored" in text


# ------------------------------------------------------------------ capabilities


def test_disable_quirks_answer_kind_changed(pair):
    """KVM_CAP_DISABLE_QUIRKS2 (5.19) answers a bitmask; KVM_CAP_DISABLE_QUIRKS kept its boolean."""
    old, new = pair
    new.replace(CAPS, "      kind: boolean\n      doc: Non-zero when quirks can be disabled.\n",
                "      kind: bitmask\n      doc: The quirks that can be disabled.\n")
    f = only(findings(old, new), "capability-meaning-changed")
    assert "capability KVM_CAP_DISABLE_QUIRKS changed meaning: KVM_CHECK_EXTENSION answers a bitmask instead of " \
           "a boolean" in str(f)
    assert "KVM_CAP_DISABLE_QUIRKS2" in f.remedy


def test_enforce_cpuid_enable_scope_changed(pair):
    """KVM_CAP_HYPERV_ENFORCE_CPUID (5.14) is enabled per vCPU; moving it to the VM breaks its users."""
    old, new = pair
    text = new.read(HYPERV)
    start = text.index("  - capability: KVM_CAP_HYPERV_ENFORCE_CPUID")
    at = text.index("      scope: vcpu\n", start)
    new.write(HYPERV, text[:at] + "      scope: vm\n" + text[at + len("      scope: vcpu\n"):])
    f = only(findings(old, new), "capability-meaning-changed")
    assert "KVM_ENABLE_CAP takes it on the vm descriptor instead of the vcpu descriptor" in str(f)


# ------------------------------------------------------------------ ioctls


def test_hv_cpuid_gaining_the_system_descriptor_is_fine_losing_the_vcpu_one_is_not(pair):
    """KVM_GET_SUPPORTED_HV_CPUID gained the system descriptor in 5.11 (KVM_CAP_SYS_HYPERV_CPUID), kept the vCPU."""
    old, new = pair
    both = "    fd:\n      - scope: system\n        capability: KVM_CAP_SYS_HYPERV_CPUID\n      - vcpu\n"
    old.replace(HYPERV, both, "    fd: [vcpu]\n")
    assert findings(old, new) == []                     # what KVM did
    new.replace(HYPERV, both, "    fd:\n      - scope: system\n        capability: KVM_CAP_SYS_HYPERV_CPUID\n")
    f = only(findings(old, new), "ioctl-moved")
    assert "ioctl KVM_GET_SUPPORTED_HV_CPUID: it is no longer available on the vcpu descriptor" in str(f)


def test_nested_state_ioctl_losing_svm(pair):
    """SVM has saved and restored nested state since 5.8; an ioctl that leaves an implementation breaks its users."""
    old, new = pair
    new.replace(NESTED, "  - ioctl: KVM_SET_NESTED_STATE\n    header: linux\n",
                "  - ioctl: KVM_SET_NESTED_STATE\n    header: linux\n    implementations: [vmx]\n")
    f = only(findings(old, new), "ioctl-moved")
    assert "ioctl KVM_SET_NESTED_STATE: implementation svm no longer has it" in str(f)


def test_fixing_set_irqchip_direction_quirk(pair):
    """KVM_SET_IRQCHIP is encoded _IOR although it reads its argument; 'fixing' it renumbers it."""
    old, new = pair
    new.replace(IRQ, "  - ioctl: KVM_SET_IRQCHIP\n    nr: 0x63\n    dir: r\n",
                "  - ioctl: KVM_SET_IRQCHIP\n    nr: 0x63\n    dir: w\n")
    f = only(findings(old, new), "ioctl-moved")     # once, not also as a changed value
    assert "its encoded direction changed (_IOR -> _IOW), which changes its number" in str(f)


# ------------------------------------------------------------------ validity


def test_exception_payload_loses_its_validity_flag(pair):
    """kvm_vcpu_events.exception_payload is read only with KVM_VCPUEVENT_VALID_PAYLOAD (4.20)."""
    old, new = pair
    new.replace(EVENTS, "        since: \"4.20\"\n        valid_with: KVM_VCPUEVENT_VALID_PAYLOAD\n        doc: |\n"
                        "          The state that",
                "        since: \"4.20\"\n        doc: |\n          The state that")
    f = only(findings(old, new), "validity-dropped")
    assert "field kvm_vcpu_events.exception_payload was only valid with KVM_VCPUEVENT_VALID_PAYLOAD and now " \
           "with no flag" in str(f)


def test_bus_lock_exit_loses_its_capability(pair):
    """KVM_EXIT_X86_BUS_LOCK (5.12) is reported only after KVM_CAP_X86_BUS_LOCK_EXIT was enabled."""
    old, new = pair
    new.replace(RUN, "    requires: KVM_CAP_X86_BUS_LOCK_EXIT\n", "")
    f = only(findings(old, new), "validity-dropped")
    assert "exit reason KVM_EXIT_X86_BUS_LOCK was reported only after KVM_CAP_X86_BUS_LOCK_EXIT was enabled and " \
           "is now reported without any opt-in" in str(f)


# ------------------------------------------------------------------ invariants of one revision


def test_gpat_as_posted_fails_validate(tmp_path):
    """March 2026: SVM emits KVM_STATE_NESTED_GPAT_VALID by default; SVM's restore rejects unknown flags."""
    s = Scratch(tmp_path)
    add_gpat_flag(s)
    result = run_kvmspec("--root", str(s.root), "validate")
    assert result.status == 1 and "Traceback" not in result.err
    line = next(l for l in result.err.splitlines() if "KVM_STATE_NESTED_GPAT_VALID" in l)
    where = s.line_of(NESTED, "- field: flags\n        implementations: [svm]\n        since: \"5.8\"")
    assert line.startswith(f"{NESTED}:{where}:")
    assert ": error: KVM_GET_NESTED_STATE emits KVM_STATE_NESTED_GPAT_VALID in flags on svm from 7.1 without an " \
           "opt-in, and KVM_SET_NESTED_STATE of 5.8 up to before 7.1 rejects it there as an unknown bit" in line
    assert "requires: KVM_CAP_" in result.err           # the hint


def test_gpat_behind_its_capability_validates(tmp_path):
    s = Scratch(tmp_path)
    add_gpat_flag(s, requires="KVM_CAP_NESTED_GPAT")
    add_items(s, NESTED, GPAT_CAP)
    load_model(s.root)


def test_gating_capability_must_be_discoverable(tmp_path):
    s = Scratch(tmp_path)
    add_gpat_flag(s, requires="KVM_CAP_NESTED_GPAT")
    add_items(s, NESTED, GPAT_CAP.replace("check: [system, vm]", "check: []"))
    errors = validate_errors(s)
    assert any("KVM_GET_NESTED_STATE is gated by KVM_CAP_NESTED_GPAT, which KVM_CHECK_EXTENSION does not report"
               in e for e in errors), errors


def test_gating_capability_must_be_enabled_where_it_gates(tmp_path):
    """KVM_GET_CLOCK is a VM ioctl: a capability enabled per vCPU cannot gate what it emits."""
    s = Scratch(tmp_path)
    clock = "      - field: flags\n        values: [KVM_CLOCK_TSC_STABLE, KVM_CLOCK_REALTIME, KVM_CLOCK_HOST_TSC]\n"
    s.replace(VM, clock, clock + "      - field: flags\n        requires: KVM_CAP_HYPERV_ENFORCE_CPUID\n"
                                 "        values: [KVM_CLOCK_TSC_STABLE]\n")
    errors = validate_errors(s)
    assert any("KVM_CAP_HYPERV_ENFORCE_CPUID is enabled on the vcpu descriptor, which does not cover KVM_GET_CLOCK "
               "(issued on the vm descriptor)" in e for e in errors), errors


def test_exceptions_and_validity_flags_are_checked(tmp_path):
    s = Scratch(tmp_path)
    s.replace(NESTED, "          - rule: unrestorable-state\n", "          - rule: unrestorable\n")
    s.replace(EVENTS, "valid_with: KVM_VCPUEVENT_VALID_SIPI_VECTOR", "valid_with: KVM_STATE_NESTED_GUEST_MODE")
    errors = validate_errors(s)
    assert any("abi_exceptions names rule 'unrestorable'" in e for e in errors), errors
    assert any("valid_with: KVM_STATE_NESTED_GUEST_MODE is not a flag of a field of struct kvm_vcpu_events" in e
               for e in errors), errors


# ------------------------------------------------------------------ history


def test_history_of_the_spec_is_explained(tmp_path):
    history = replay(load_model(Scratch(tmp_path).root))
    assert len(history.transitions) == len(history.releases) - 1 >= 50
    assert history.unexplained() == []
    found = {(r.release, f.rule.id, f.subject) for r, f in history.findings}
    assert ("5.6", "unrestorable-state", "KVM_STATE_NESTED_MTF_PENDING") in found
    assert ("5.19", "validation-tightened", "KVM_X86_SET_MSR_FILTER") in found
    assert ("6.14", "removed-without-deprecation", "KVM_X86_DISABLE_VALID_EXITS") in found
    # every release in the spec is exact, so every change is dated
    assert sum(len(t.undated) for t in history.transitions) == 0


def test_history_reports_a_count_that_changed_unless_recorded(tmp_path):
    """KVM_SEV_NR_MAX grew five times (its history: says when); each change is recorded as intended."""
    s = Scratch(tmp_path)
    text = s.read("spec/x86/sev.yaml")
    start = text.index("        abi_exceptions:\n          - rule: value-changed")
    s.write("spec/x86/sev.yaml", text[:start] + text[text.index("        doc: |", start):])
    history = replay(load_model(s.root))
    found = [(r.release, f.message.split(":")[0]) for r, f in history.unexplained()]
    assert found == [("5.12", "KVM_SEV_NR_MAX changed from 20 to 21 in 5.12"),
                     ("5.13", "KVM_SEV_NR_MAX changed from 21 to 22 in 5.13"),
                     ("6.10", "KVM_SEV_NR_MAX changed from 22 to 23 in 6.10"),
                     ("6.11", "KVM_SEV_NR_MAX changed from 23 to 103 in 6.11"),
                     ("7.0", "KVM_SEV_NR_MAX changed from 103 to 104 in 7.0")]
    # an expression that names the same number is no change (KVM_DEV_VFIO_GROUP became KVM_DEV_VFIO_FILE in 6.6)
    assert not any("KVM_DEV_VFIO_GROUP" in f.message for _, f in history.findings)


def test_history_reports_a_break_the_spec_does_not_explain(tmp_path):
    """Without its recorded reason, the MSR filter check of 5.19 is an error of the spec's history."""
    s = Scratch(tmp_path)
    text = s.read(MSRS)
    start = text.index("    abi_exceptions:\n      - rule: validation-tightened")
    s.write(MSRS, text[:start] + text[text.index("    arg:", start):])
    result = run_kvmspec("--root", str(s.root), "compat", "--history")
    assert result.status == 1, result.out + result.err
    line = next(l for l in result.out.splitlines() if "[validation-tightened]" in l)
    assert line.startswith(f"{MSRS}:") and ": 5.18 -> 5.19: error: [validation-tightened] KVM_X86_SET_MSR_FILTER" \
        in line
    assert ", 1 error(s), in " in result.out.splitlines()[-1]
    ok = run_kvmspec("compat", "--history", "--format", "json")
    data = json.loads(ok.out)
    assert ok.status == 0 and data["errors"] == 0 and data["transitions"] == len(data["releases"]) - 1
    assert all(f["explained"] for f in data["findings"])


def test_history_usage_errors():
    assert run_kvmspec("compat", "--history", "HEAD").status == 2
    bad = run_kvmspec("compat", "--history", "--since", "five")
    assert bad.status == 2 and "give a release such as 5.8" in bad.err
    assert run_kvmspec("compat", "HEAD", "--since", "5.8").status == 2


# ------------------------------------------------------------------ architectures that gain an ioctl later

VCPU = "spec/common/vcpu.yaml"
GUEST_DEBUG_ARCH = '    arch: [x86, {arm64: "4.3"}, {s390: "3.16"}, {ppc: "3.10"}, {riscv: "6.10"}, {loongarch: "6.10"}]\n    evidence: "Before'


def test_an_architecture_gaining_an_ioctl_is_not_a_finding_losing_it_is(tmp_path):
    """KVM_SET_GUEST_DEBUG reached riscv and loongarch in 6.10: --history has a 6.9 -> 6.10
    transition in which they gain it, and no finding for it; a revision that takes riscv
    off the ioctl's list is an ioctl-moved finding."""
    from kvmspec.compat.view import AbiView
    from kvmspec.model import Version
    model = load_model(Scratch(tmp_path / "spec").root)
    debug = model.by_name["KVM_SET_GUEST_DEBUG"]
    assert "riscv" not in AbiView(model, Version.parse("6.9")).arches(debug)
    assert {"riscv", "loongarch"} <= set(AbiView(model, Version.parse("6.10")).arches(debug))
    history = replay(model, since=Version.parse("6.10"))
    gained = next(t for t in history.transitions if t.new.release == "6.10")
    assert gained.old.release == "6.9"
    assert not [f for f in gained.findings if f.subject == "KVM_SET_GUEST_DEBUG"]

    old, new = Scratch(tmp_path / "old"), Scratch(tmp_path / "new")
    new.replace(VCPU, GUEST_DEBUG_ARCH, GUEST_DEBUG_ARCH.replace(', {riscv: "6.10"}', ""))
    f = only(findings(old, new), "ioctl-moved")
    assert "ioctl KVM_SET_GUEST_DEBUG: it left architecture riscv" in str(f)
    # dating it later (a correction of the history) loses nothing at the newest state
    later = Scratch(tmp_path / "later")
    later.replace(VCPU, GUEST_DEBUG_ARCH, GUEST_DEBUG_ARCH.replace('{riscv: "6.10"}', '{riscv: "6.12"}'))
    assert findings(old, later) == []


def test_s390_mp_states_are_restorable_because_s390_gained_the_ioctls_with_them(tmp_path):
    """s390 implemented KVM_GET_MP_STATE and KVM_SET_MP_STATE in 3.17, together with its states
    (KVM_MP_STATE_OPERATING, KVM_MP_STATE_LOAD): no older s390 kernel could refuse them. Without
    that date the spec would claim s390 had the pair since 2.6.26, and validate reports the break."""
    s = Scratch(tmp_path)
    load_model(s.root)   # as it is: valid
    for name in ("KVM_GET_MP_STATE", "KVM_SET_MP_STATE"):
        text = s.read(VCPU)
        start = text.index(f"  - ioctl: {name}\n")
        head, tail = text[:start], text[start:]
        s.write(VCPU, head + tail.replace('{s390: "3.17"}', "s390", 1))
    errors = validate_errors(s)
    assert any("KVM_GET_MP_STATE emits KVM_MP_STATE_OPERATING in mp_state on s390 from 3.17" in e for e in errors)
    assert any("KVM_MP_STATE_LOAD" in e for e in errors)
