#!/usr/bin/env python3
"""Port-I/O exits per second: generated bindings vs a hand-written loop vs C, in one run.

    python benchmarks/bench_exits.py [--exits N] [--rounds R]

A guest loops on `out dx, al`, so every KVM_RUN returns to userspace with
KVM_EXIT_IO. Each handler reads the exit reason and the port, as a device
model would, and runs the guest again:

  (a) kvm_uapi.api: exit = vcpu.run(), a typed exit; isinstance(exit, IoExit) and
      exit.port;
  (b) what one writes without kvmspec: fcntl.ioctl(fd, KVM_RUN, 0) and
      struct.unpack_from on the mmap'ed kvm_run;
  (c) the same loop in C.

Rounds alternate (a), (b), (c) so that the machine's state affects all three
alike; the median rate of each is printed with the ratios. Target: (a) within
1.10x of (b).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 0x3F8
CODE = bytes([0xBA, PORT & 0xFF, PORT >> 8, 0xEE, 0xEB, 0xFD])   # mov dx, PORT; l: out dx, al; jmp l
MEMORY = 0x10000
CODE_AT = 0x1000

C_PROGRAM = r"""
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long exits = atol(argv[1]), n = 0;
	static const unsigned char code[] = { 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xfd };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	unsigned char *mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0,
		.memory_size = 0x10000, .userspace_addr = (unsigned long)mem };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	struct timespec start, end;
	int vcpu, size;

	memcpy(mem + 0x1000, code, sizeof(code));
	if (kvm < 0 || vm < 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return 1;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	ioctl(vcpu, KVM_SET_SREGS, &sregs);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x1000;
	regs.rflags = 2;
	ioctl(vcpu, KVM_SET_REGS, &regs);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (n < exits) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			return 2;
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x3f8)
			return 3;
		n++;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.6f\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
	return 0;
}
"""


def make_vcpu():
    from kvm_uapi.api import Kvm
    kvm = Kvm()
    vm = kvm.create_vm()
    memory = vm.add_memory(0, MEMORY)
    memory.write(CODE_AT, CODE)
    vcpu = vm.create_vcpu(0)
    vcpu.set_sregs(cs={"base": 0, "selector": 0, "limit": 0xFFFF, "type": 11, "present": 1, "s": 1})
    vcpu.set_regs(rip=CODE_AT, rflags=2)
    return kvm, vm, vcpu, memory


def bindings_loop(exits: int) -> float:
    from kvm_uapi.api import IoExit
    kvm, vm, vcpu, memory = make_vcpu()
    start = time.perf_counter()
    for _ in range(exits):
        exit = vcpu.run()
        if not isinstance(exit, IoExit) or exit.port != PORT:
            raise RuntimeError(f"unexpected exit {exit!r}")
    elapsed = time.perf_counter() - start
    vcpu.close(), vm.close(), kvm.close()
    return elapsed


def raw_loop(exits: int) -> float:
    import kvm_uapi
    kvm, vm, vcpu, memory = make_vcpu()
    # Only the loop is written without kvmspec: numbers and offsets as a user would hard-code them.
    kvm_run_request = 0xAE80
    run = mmap.mmap(vcpu.fileno(), kvm.get_vcpu_mmap_size(), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    fd = vcpu.fileno()
    exit_io = 2
    unpack = struct.unpack_from
    start = time.perf_counter()
    for _ in range(exits):
        fcntl.ioctl(fd, kvm_run_request, 0)
        reason, = unpack("<I", run, 8)
        port, = unpack("<H", run, 34)
        if reason != exit_io or port != PORT:
            raise RuntimeError("unexpected exit")
    elapsed = time.perf_counter() - start
    assert kvm_run_request == kvm_uapi.KVM_RUN and exit_io == kvm_uapi.KVM_EXIT_IO
    run.close()
    vcpu.close(), vm.close(), kvm.close()
    return elapsed


def c_loop(binary: Path, exits: int) -> float:
    out = subprocess.run([str(binary), str(exits)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exits", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("bench_exits: /dev/kvm is not usable here; nothing to measure")
        return 2
    gcc = shutil.which("gcc")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "exits"
        if gcc:
            (Path(tmp) / "exits.c").write_text(C_PROGRAM)
            subprocess.run([gcc, "-O2", "-o", str(binary), str(Path(tmp) / "exits.c")], check=True)
        rates: dict[str, list[float]] = {"bindings": [], "raw": [], "c": []}
        for _ in range(args.rounds):
            rates["bindings"].append(args.exits / bindings_loop(args.exits))
            rates["raw"].append(args.exits / raw_loop(args.exits))
            if gcc:
                rates["c"].append(args.exits / c_loop(binary, args.exits))
    median = {k: statistics.median(v) for k, v in rates.items() if v}
    print(f"{args.exits} port-I/O exits per round, {args.rounds} rounds, median exits per second:")
    print(f"  (a) kvm_uapi.api bindings      {median['bindings']:10.0f}")
    print(f"  (b) fcntl.ioctl + struct loop  {median['raw']:10.0f}")
    if "c" in median:
        print(f"  (c) C                          {median['c']:10.0f}")
    ratio = median["raw"] / median["bindings"]
    print(f"  time per exit, (a) / (b): {ratio:.3f}x" + (f"; (b) / (c): {median['c'] / median['raw']:.3f}x"
                                                        if "c" in median else ""))
    print(f"  {'PASS' if ratio <= 1.10 else 'FAIL'}  bindings within 1.10x of the hand-written loop: {ratio:.3f}x")
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
