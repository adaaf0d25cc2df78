#!/usr/bin/env python3
"""Run a few bytes of real-mode code in a KVM guest and print what it writes to a port.

    python examples/hello_guest.py [--device PATH] [message]

The guest writes the message one byte at a time to I/O port 0x3f8 (the
first serial port) and halts. Every OUT makes KVM_RUN return to userspace
with KVM_EXIT_IO; this program collects the bytes until KVM_EXIT_HLT.
"""

from __future__ import annotations

import argparse
import sys

from kvm_uapi import KVM_EXIT_IO_OUT
from kvm_uapi.api import HltExit, IoExit, Kvm

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
    with Kvm(device) as kvm, kvm.create_vm() as vm, vm.create_vcpu(0) as vcpu:
        memory = vm.add_memory(0, MEMORY_SIZE)
        memory.write(CODE_ADDRESS, guest_code(message))
        # Real mode from address 0 of the code segment: only the fields named change.
        vcpu.set_sregs(cs={"base": 0, "selector": 0})
        vcpu.set_regs(rip=CODE_ADDRESS, rflags=0x2)
        output = bytearray()
        while True:
            match vcpu.run():
                case IoExit(port=port, direction=direction) as io if port == PORT and direction == KVM_EXIT_IO_OUT:
                    output += io.data
                case HltExit():
                    return bytes(output)
                case other:
                    raise RuntimeError(f"unexpected exit {other!r}")


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
