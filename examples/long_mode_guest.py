#!/usr/bin/env python3
"""Run a 64-bit long-mode guest set up through kvm_uapi alone, as a VMM would.

    python examples/long_mode_guest.py [--device PATH]

The VMM (this program):
- writes a GDT, an IDT, identity-mapping page tables and the guest's code into guest memory
  (Vm.add_memory, which uses KVM_SET_USER_MEMORY_REGION2 where the kernel has it);
- gives the vCPU the CPUID table KVM supports (KVM_GET_SUPPORTED_CPUID, which sizes itself,
  passed to KVM_SET_CPUID2), turns on EFER.LME through KVM_SET_MSRS, and starts the vCPU
  directly in 64-bit mode (KVM_SET_SREGS: paging, PAE, a 64-bit code segment);
- serves the guest's exits: port output on 0x3f8, an MMIO device at 2 MiB (the guest writes 8
  bytes to it and reads 8 back), and HLT, on which it injects interrupt 0x20 (KVM_INTERRUPT)
  for the guest's IDT handler; the guest reports on exit port 0x501 and the VMM stops there.

The guest prints the CPU vendor it sees through CPUID, what the MMIO device answered, and a
line from its interrupt handler. Exit status: 0 when the guest finished, 1 when it took an
exception or the VMM saw an exit it did not expect, 3 when KVM could not run it (an internal
error: some KVM backends do not emulate every instruction), 2 when /dev/kvm is not usable.

The guest's machine code is written out as bytes, each instruction with its assembly (Intel
syntax); tests/test_example.py assembles those lines with GNU as, where installed, and compares.
"""

from __future__ import annotations

import argparse
import struct
import sys

from kvm_uapi import KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT
from kvm_uapi.api import (GuestMemory, HltExit, InternalErrorExit, IoExit, Kvm, KvmIncomplete, MmioExit,
                          ShutdownExit, Vcpu)

# ---------------------------------------------------------------- guest-physical layout
MEMORY_SIZE = 0x200000     # 2 MiB of RAM from 0
GDT = 0x1000
IDT = 0x2000
CODE = 0x4000              # main program
HANDLER = 0x5000           # interrupt 0x20
FAULTS = 0x5100            # one 16-byte stub per exception vector 0-31
DATA = 0x6000
STACK_TOP = 0x8000
PML4, PDPT, PD = 0x10000, 0x11000, 0x12000
MMIO = 0x200000            # just above RAM: mapped by the page tables, backed by no memory slot

SERIAL_PORT = 0x3F8
EXIT_PORT = 0x501          # the guest writes its status here when it is done
FAULT_PORT = 0x502         # ... and the vector here when it takes an exception
IRQ_VECTOR = 0x20
DEVICE_ANSWER = b"MMIO ok\n"

MSR_EFER = 0xC0000080
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 1 << 1, 1 << 4, 1 << 5, 1 << 16, 1 << 31
CR4_PAE = 1 << 5
RFLAGS_RESERVED = 1 << 1

# ---------------------------------------------------------------- the guest's code
HANDLED_MESSAGE = b"interrupt 0x20 handled by the guest's IDT\n"

MAIN: list[tuple[str, str]] = [
    ("31 c0", "xor eax, eax"),
    ("0f a2", "cpuid"),
    ("89 1c 25 00 60 00 00", "mov dword ptr [0x6000], ebx"),
    ("89 14 25 04 60 00 00", "mov dword ptr [0x6004], edx"),
    ("89 0c 25 08 60 00 00", "mov dword ptr [0x6008], ecx"),
    ("c6 04 25 0c 60 00 00 0a", "mov byte ptr [0x600c], 0x0a"),
    ("be 00 60 00 00", "mov esi, 0x6000"),
    ("b9 0d 00 00 00", "mov ecx, 13"),
    ("ba f8 03 00 00", "mov edx, 0x3f8"),
    ("f3 6e", "rep outsb"),                         # one port-I/O exit for 13 bytes
    ("bf 00 00 20 00", "mov edi, 0x200000"),
    ("48 b8 " + " ".join(f"{b:02x}" for b in b"64-bit!\n"), "movabs rax, 0x" + b"64-bit!\n"[::-1].hex()),
    ("48 89 07", "mov qword ptr [rdi], rax"),       # MMIO write of 8 bytes
    ("48 8b 47 08", "mov rax, qword ptr [rdi+8]"),  # MMIO read of 8 bytes
    ("48 89 04 25 10 60 00 00", "mov qword ptr [0x6010], rax"),
    ("be 10 60 00 00", "mov esi, 0x6010"),
    ("b9 08 00 00 00", "mov ecx, 8"),
    ("f3 6e", "rep outsb"),
    ("fb", "sti"),
    ("f4", "hlt"),                                  # wait for interrupt 0x20
    ("ba 01 05 00 00", "mov edx, 0x501"),
    ("8a 04 25 20 60 00 00", "mov al, byte ptr [0x6020]"),
    ("ee", "out dx, al"),                           # report: 1 once the handler ran
    ("f4", "hlt"),
]

INTERRUPT_HANDLER: list[tuple[str, str]] = [
    ("50", "push rax"),
    ("51", "push rcx"),
    ("52", "push rdx"),
    ("56", "push rsi"),
    ("be 30 60 00 00", "mov esi, 0x6030"),
    (f"b9 {len(HANDLED_MESSAGE):02x} 00 00 00", f"mov ecx, {len(HANDLED_MESSAGE)}"),
    ("ba f8 03 00 00", "mov edx, 0x3f8"),
    ("f3 6e", "rep outsb"),
    ("c6 04 25 20 60 00 00 01", "mov byte ptr [0x6020], 1"),
    ("5e", "pop rsi"),
    ("5a", "pop rdx"),
    ("59", "pop rcx"),
    ("58", "pop rax"),
    ("48 cf", "iretq"),
]


def fault_stub(vector: int) -> list[tuple[str, str]]:
    """Exception `vector`: report it on FAULT_PORT and stop."""
    return [(f"b0 {vector:02x}", f"mov al, {vector}"), ("ba 02 05 00 00", "mov edx, 0x502"),
            ("ee", "out dx, al"), ("f4", "hlt")]


def assembled(lines: list[tuple[str, str]]) -> bytes:
    return b"".join(bytes.fromhex(code) for code, _ in lines)


# ---------------------------------------------------------------- tables
def segment_descriptor(access: int, flags: int) -> bytes:
    """A flat descriptor: base 0, limit 0xfffff (granularity in `flags`)."""
    return struct.pack("<HHBBBB", 0xFFFF, 0, 0, access, (flags << 4) | 0xF, 0)


CODE64_ACCESS, DATA_ACCESS = 0x9A, 0x92      # present, ring 0, code execute/read; data read/write
CODE64_FLAGS, DATA_FLAGS = 0xA, 0xC          # G + L (64-bit code); G + D/B
CODE_SELECTOR, DATA_SELECTOR = 0x08, 0x10


def gdt() -> bytes:
    return bytes(8) + segment_descriptor(CODE64_ACCESS, CODE64_FLAGS) + segment_descriptor(DATA_ACCESS, DATA_FLAGS)


def interrupt_gate(offset: int) -> bytes:
    """A 64-bit interrupt gate to `offset` in the code segment."""
    return struct.pack("<HHBBHII", offset & 0xFFFF, CODE_SELECTOR, 0, 0x8E, (offset >> 16) & 0xFFFF, offset >> 32, 0)


def idt() -> bytes:
    gates = [interrupt_gate(FAULTS + 16 * v) for v in range(32)]
    gates += [interrupt_gate(HANDLER) if v == IRQ_VECTOR else bytes(16) for v in range(32, 256)]
    return b"".join(gates)


def page_tables(memory: GuestMemory) -> None:
    """Identity-map the first 4 MiB with 2 MiB pages: RAM, then the MMIO device."""
    present_writable, large = 0x3, 0x80
    memory.write(PML4, struct.pack("<Q", PDPT | present_writable))
    memory.write(PDPT, struct.pack("<Q", PD | present_writable))
    memory.write(PD, struct.pack("<QQ", 0 | present_writable | large, MMIO | present_writable | large))


def segment(selector: int, code: bool) -> dict[str, int]:
    """kvm_segment fields of a flat ring-0 segment (64-bit code when `code`)."""
    return {"base": 0, "limit": 0xFFFFFFFF, "selector": selector, "type": 0xB if code else 0x3, "present": 1,
            "dpl": 0, "db": 0 if code else 1, "s": 1, "l": 1 if code else 0, "g": 1}


# ---------------------------------------------------------------- the VMM
class GuestFailed(Exception):
    """The guest did something the VMM does not serve (exit status 1)."""


class KvmCannotRun(Exception):
    """KVM stopped the guest with an internal error (exit status 3)."""


def set_up(kvm: Kvm, vcpu: Vcpu, memory: GuestMemory) -> None:
    memory.write(GDT, gdt())
    memory.write(IDT, idt())
    page_tables(memory)
    memory.write(CODE, assembled(MAIN))
    memory.write(HANDLER, assembled(INTERRUPT_HANDLER))
    for vector in range(32):
        memory.write(FAULTS + 16 * vector, assembled(fault_stub(vector)))
    memory.write(DATA + 0x30, HANDLED_MESSAGE)

    # The CPUID table KVM supports (it must offer long mode before EFER.LME is accepted).
    vcpu.set_cpuid2(entries=kvm.get_supported_cpuid().entries)
    vcpu.set_msrs(entries=[{"index": MSR_EFER, "data": EFER_LME}])
    # Start in long mode. The keywords change only what they name (the rest is read first),
    # so EFER keeps LME from above; LMA, which says long mode is active, is set with the
    # paging bits (KVM_SET_MSRS cannot set it).
    efer = vcpu.get_sregs().efer
    vcpu.set_sregs(cr0=CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG, cr3=PML4, cr4=CR4_PAE,
                   efer=efer | EFER_LMA,
                   cs=segment(CODE_SELECTOR, True), ds=segment(DATA_SELECTOR, False),
                   es=segment(DATA_SELECTOR, False), ss=segment(DATA_SELECTOR, False),
                   gdt={"base": GDT, "limit": len(gdt()) - 1}, idt={"base": IDT, "limit": 256 * 16 - 1})
    vcpu.set_regs(rip=CODE, rsp=STACK_TOP, rflags=RFLAGS_RESERVED)


def serve(vcpu: Vcpu) -> bytes:
    """Run the guest until it reports on EXIT_PORT; returns what it wrote to the serial port."""
    output = bytearray()
    mmio_writes: list[bytes] = []
    injected = False
    while True:
        exit = vcpu.run()
        match exit:
            case IoExit(port=port, direction=direction) if port == SERIAL_PORT and direction == KVM_EXIT_IO_OUT:
                output += exit.data
            case IoExit(port=port, direction=direction) if port == EXIT_PORT and direction == KVM_EXIT_IO_OUT:
                if bytes(exit.data) != b"\x01":
                    raise GuestFailed(f"the guest finished without handling interrupt {IRQ_VECTOR:#x}")
                if mmio_writes != [b"64-bit!\n"]:
                    raise GuestFailed(f"the MMIO device saw {mmio_writes!r}")
                return bytes(output)
            case IoExit(port=port) if port == FAULT_PORT:
                raise GuestFailed(f"the guest took exception vector {exit.data[0]} at its IDT stub")
            case IoExit(port=port, direction=direction) if direction == KVM_EXIT_IO_IN:
                exit.data[:] = b"\xff" * len(exit.data)   # nothing behind other ports
            case MmioExit(phys_addr=address, is_write=1) if address == MMIO:
                mmio_writes.append(bytes(exit.data))
            case MmioExit(phys_addr=address, is_write=0, len=8) if address == MMIO + 8:
                exit.data[:] = DEVICE_ANSWER
            case HltExit() if not injected:
                run = vcpu.kvm_run
                if not (run.if_flag and run.ready_for_interrupt_injection):
                    raise GuestFailed("the guest halted with interrupts disabled")
                vcpu.interrupt(irq=IRQ_VECTOR)     # KVM_INTERRUPT: delivered on the next KVM_RUN
                injected = True
            case InternalErrorExit():
                raise KvmCannotRun(f"KVM could not run the guest: internal error {exit.suberror.name} "
                                   f"(data {[hex(d) for d in exit.data]}); this KVM backend does not emulate "
                                   f"an instruction the guest executed")
            case ShutdownExit():
                raise GuestFailed("the guest shut down (triple fault)")
            case _:
                raise GuestFailed(f"unexpected exit {exit!r}")


def run(device: str = "/dev/kvm") -> bytes:
    with Kvm(device) as kvm, kvm.create_vm() as vm, vm.create_vcpu(0) as vcpu:
        memory = vm.add_memory(0, MEMORY_SIZE)
        set_up(kvm, vcpu, memory)
        return serve(vcpu)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a 64-bit long-mode guest set up with kvm_uapi.")
    parser.add_argument("--device", default="/dev/kvm", help="the KVM device (default: %(default)s)")
    args = parser.parse_args()
    try:
        output = run(args.device)
    except KvmCannotRun as exc:
        print(f"long_mode_guest: {exc}", file=sys.stderr)
        return 3
    except (GuestFailed, KvmIncomplete) as exc:
        print(f"long_mode_guest: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # KvmError too: it names the ioctl and what the errno means for it
        print(f"long_mode_guest: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(output.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
