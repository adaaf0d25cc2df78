#!/usr/bin/env python3
"""Run a few bytes of real-mode code in a KVM guest and print what it writes to a port.

    python examples/hello_guest.py [--device PATH] [message]

The guest writes the message one byte at a time to I/O port 0x3f8 (the
first serial port) and halts. Every OUT makes KVM_RUN return to userspace
with KVM_EXIT_IO; this program collects the bytes until KVM_EXIT_HLT.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import sys

from kvm_uapi import KVM_EXIT_IO_OUT, KVM_MEM_LOG_DIRTY_PAGES  # noqa: F401 - names from the spec
from kvm_uapi.api import ExitReason, Kvm

PORT = 0x3F8
CODE_ADDRESS = 0x1000
MEMORY_SIZE = 0x10000


def guest_code(message: bytes) -> bytes:
    """mov dx, PORT; then mov al, byte; out dx, al for every byte; hlt."""
    code = bytes([0xBA, PORT & 0xFF, PORT >> 8])
    for byte in message:
        code += bytes([0xB0, byte, 0xEE])
    return code + b"\xf4"


def run(message: bytes, device: str = "/dev/kvm") -> bytes:
    with Kvm(device) as kvm, kvm.create_vm() as vm:
        memory = mmap.mmap(-1, MEMORY_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        memory[CODE_ADDRESS:CODE_ADDRESS + len(guest_code(message))] = guest_code(message)
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        vm.set_user_memory_region(slot=0, guest_phys_addr=0, memory_size=MEMORY_SIZE, userspace_addr=address)
        with vm.create_vcpu(0) as vcpu:
            sregs = vcpu.get_sregs()
            sregs.cs.base, sregs.cs.selector = 0, 0
            vcpu.set_sregs(sregs)
            regs = vcpu.get_regs()
            regs.rip, regs.rflags = CODE_ADDRESS, 0x2
            vcpu.set_regs(regs)
            output = bytearray()
            run_area = vcpu.kvm_run
            while True:
                vcpu.run()
                reason = vcpu.exit_reason
                if reason == ExitReason.IO:
                    io = vcpu.exit
                    if io.port != PORT or io.direction != KVM_EXIT_IO_OUT:
                        raise RuntimeError(f"unexpected port access {io.port:#x}")
                    output += ctypes.string_at(ctypes.addressof(run_area) + io.data_offset,
                                               io.size * io.count)
                elif reason == ExitReason.HLT:
                    break
                else:
                    raise RuntimeError(f"unexpected exit {reason!r}")
            del run_area
        del address
    return bytes(output)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a tiny real-mode guest that prints a message.")
    parser.add_argument("--device", default="/dev/kvm", help="the KVM device (default: %(default)s)")
    parser.add_argument("message", nargs="*", help="what the guest writes (default: a greeting)")
    args = parser.parse_args()
    text = " ".join(args.message) or "Hello from a KVM guest, written in Python with kvm_uapi!"
    try:
        output = run(text.encode(), args.device)
    except OSError as exc:  # KvmError is an OSError too: it names the ioctl and the errno's meaning
        print(f"hello_guest: {exc}", file=sys.stderr)
        return 2
    print(output.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
