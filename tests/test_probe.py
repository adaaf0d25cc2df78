"""kvmspec probe: the spec checked against the running kernel through /dev/kvm.

The live tests need a usable /dev/kvm and skip, with the reason, elsewhere.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import REPO, needs_kvm, run_kvmspec
from kvmspec.build import load_model
from kvmspec.probe import Session, implementation, probe_ioctl, rejection_claims

DEVICE = "/dev/kvm"


MODEL = load_model(REPO)
IMPLEMENTATION = implementation()
CLAIMED = sorted(i.name for i in MODEL.ioctls if rejection_claims(i, IMPLEMENTATION)[0])


@needs_kvm
def test_probe_json_finds_no_disagreement():
    result = run_kvmspec("probe", "--json", cwd=REPO)
    assert result.status == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["disagreements"] == []
    assert report["api_version"] == 12
    names = {c["name"] for c in report["capabilities"]}
    # every capability x86 headers define, removed ones too (the probe says if a kernel still
    # reports them), but not an old name of a number a newer capability carries
    carried = {c.value for c in MODEL.capabilities if c.removed is None}
    assert names == {c.name for c in MODEL.capabilities
                     if c.active and not (c.removed is not None and c.value in carried)}
    answers = {c["name"]: c for c in report["capabilities"]}
    # Capabilities every x86 KVM since the 2.6 days reports on /dev/kvm.
    for name in ("KVM_CAP_USER_MEMORY", "KVM_CAP_IRQCHIP", "KVM_CAP_NR_VCPUS"):
        assert answers[name]["system"], f"{name} should be reported on {DEVICE}"
    # An s390-only capability is not reported by an x86 kernel.
    assert not answers["KVM_CAP_S390_PSW"]["system"]
    outcomes = {r["outcome"] for r in report["rejections"]}
    assert "confirmed" in outcomes and "disagrees" not in outcomes
    confirmed = {(r["ioctl"], r["field"]) for r in report["rejections"] if r["outcome"] == "confirmed"}
    assert ("KVM_SET_USER_MEMORY_REGION", "flags") in confirmed


@needs_kvm
def test_probe_summary_names_the_kernel_and_counts():
    result = run_kvmspec("probe", cwd=REPO)
    assert result.status == 0, result.out + result.err
    assert f"kernel {os.uname().release}," in result.out
    carried = {c.value for c in MODEL.capabilities if c.removed is None}
    probed = sum(1 for c in MODEL.capabilities if c.active and not (c.removed is not None and c.value in carried))
    assert f"capabilities: {probed} in the spec" in result.out
    assert result.out.rstrip().endswith("0 disagreement(s) between the spec and this kernel")


@pytest.mark.parametrize("device,why", [
    ("/nonexistent/kvm", "/nonexistent/kvm does not exist"),
    ("/dev/null", "/dev/null is not a KVM device"),
    ("/", "/ cannot be opened"),
])
def test_probe_without_a_usable_device_says_so_in_one_sentence(device, why):
    result = run_kvmspec("probe", "--device", device, cwd=REPO)
    assert result.status == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert lines[0].startswith(f"kvmspec: {why}")


@needs_kvm
@pytest.mark.parametrize("name", CLAIMED)
def test_rejection_claim_holds_on_this_kernel(name):
    """Each ioctl whose spec says that unknown flag bits or non-zero reserved
    fields are rejected: a throwaway VM or vCPU gets a valid input with one
    such bit set, and the kernel must fail it."""
    impl = IMPLEMENTATION
    ioctl = MODEL.by_name[name]
    rules, _ = rejection_claims(ioctl, impl)
    session = Session(MODEL, DEVICE)
    try:
        results = probe_ioctl(session, ioctl, impl)
    finally:
        session.close()
    assert len(results) == len(rules)
    disagreements = [r for r in results if r.outcome == "disagrees"]
    assert not disagreements, "; ".join(f"{r.field}: {r.detail}" for r in disagreements)
    if not any(r.outcome == "confirmed" for r in results):
        pytest.skip("; ".join(f"{r.field}: {r.outcome}: {r.detail}" for r in results))
