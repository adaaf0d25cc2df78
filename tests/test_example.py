"""The examples run as a user would run them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, needs_kvm


@needs_kvm
def test_hello_guest_prints_what_the_guest_wrote():
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from a KVM guest, written in Python with kvm_uapi!\n"
    assert proc.stderr == ""


def test_hello_guest_without_kvm_fails_cleanly(tmp_path):
    missing = tmp_path / "missing"
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py"), "--device", str(missing)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"hello_guest: [Errno 2] No such file or directory: '{missing}'\n"


@needs_kvm
def test_hello_guest_carries_any_message():
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py"), "two", "words"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "two words\n"


# ------------------------------------------------------------------ the long-mode guest


def long_mode_guest():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import long_mode_guest as module
    finally:
        sys.path.remove(str(REPO / "examples"))
    return module


@needs_kvm
def test_long_mode_guest_runs_and_reports_cpuid_mmio_and_its_interrupt():
    proc = subprocess.run([sys.executable, str(REPO / "examples/long_mode_guest.py")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    vendor, device, handler = proc.stdout.splitlines()
    assert vendor in ("AuthenticAMD", "GenuineIntel", "HygonGenuine", "CentaurHauls")   # CPUID leaf 0 via KVM
    assert device == "MMIO ok"
    assert handler == "interrupt 0x20 handled by the guest's IDT"
    assert proc.stderr == ""


def test_long_mode_guest_without_kvm_fails_cleanly(tmp_path):
    missing = tmp_path / "missing"
    proc = subprocess.run([sys.executable, str(REPO / "examples/long_mode_guest.py"), "--device", str(missing)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"long_mode_guest: [Errno 2] No such file or directory: '{missing}'\n"


def test_long_mode_guest_code_is_what_its_assembly_says(tmp_path):
    """Each instruction's bytes, as written in the example, are what GNU as makes of its text."""
    if shutil.which("as") is None or shutil.which("objcopy") is None:
        pytest.skip("GNU as and objcopy (binutils) are not installed")
    guest = long_mode_guest()
    lines = guest.MAIN + guest.INTERRUPT_HANDLER + [line for v in range(32) for line in guest.fault_stub(v)]
    source = tmp_path / "guest.s"
    source.write_text(".intel_syntax noprefix\n.code64\n" + "\n".join(asm for _, asm in lines) + "\n")
    subprocess.run(["as", "--64", "-o", str(tmp_path / "guest.o"), str(source)], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(tmp_path / "guest.o"), str(tmp_path / "guest.bin")],
                   check=True)
    assert (tmp_path / "guest.bin").read_bytes() == guest.assembled(lines)


@needs_kvm
def test_long_mode_guest_reports_an_internal_error_clearly(monkeypatch, capsys):
    """An instruction KVM cannot run (here: code fetched from the MMIO page) ends in a clear message."""
    guest = long_mode_guest()
    original = guest.set_up

    def jump_into_mmio(kvm, vcpu, memory):
        original(kvm, vcpu, memory)
        vcpu.set_regs(rip=guest.MMIO + 0x100)   # fetch from the device page, which has no memory

    monkeypatch.setattr(guest, "set_up", jump_into_mmio)
    monkeypatch.setattr(sys, "argv", ["long_mode_guest.py"])
    assert guest.main() == 3
    err = capsys.readouterr().err
    assert err.startswith("long_mode_guest: KVM could not run the guest: internal error KVM_INTERNAL_ERROR_")
