"""The README's idioms as a VMM author writes them: checked by `mypy --strict` (assert_type fails
type checking unless the inferred type is exactly the one named) and run on /dev/kvm
(assert_type does nothing at run time). tests/test_typing.py does both."""

from __future__ import annotations

from typing import assert_type

from kvm_uapi import (kvm_clock_flags, kvm_cpuid2, kvm_exit_io_direction,
                      kvm_internal_error_suberror, kvm_msrs, kvm_regs, kvm_sregs)
from kvm_uapi.api import (Exit, ExitReason, GuestMemory, HltExit, InternalErrorExit, IoExit, Kvm, KvmIncomplete,
                          MmioExit, Vcpu, Vm)

CODE = bytes.fromhex("baf803" "b048" "ee" "b069" "ee" "a20090" "f4")   # out 'H', out 'i', mmio write, hlt


def main() -> str:
    out = bytearray()
    with Kvm() as kvm, kvm.create_vm() as vm, vm.create_vcpu(0) as vcpu:
        assert_type(kvm, Kvm)
        assert_type(vm, Vm)
        assert_type(vcpu, Vcpu)

        cpuid = kvm.get_supported_cpuid()
        assert_type(cpuid, kvm_cpuid2)
        assert_type(cpuid.nent, int)
        vcpu.set_cpuid2(entries=list(cpuid.entries))

        memory = vm.add_memory(0, 0x8000)
        assert_type(memory, GuestMemory)
        memory.write(0x1000, CODE)
        assert_type(memory[0x1000:0x1004], memoryview)

        sregs = vcpu.get_sregs()
        assert_type(sregs, kvm_sregs)
        assert_type(sregs.cs.base, int)
        vcpu.set_sregs(cs={"base": 0, "selector": 0, "limit": 0xFFFF, "type": 11, "present": 1, "s": 1})
        vcpu.set_regs(rip=0x1000, rflags=2)
        regs = vcpu.get_regs()
        assert_type(regs, kvm_regs)
        assert_type(regs.rip, int)

        clock = vm.get_clock()
        assert_type(clock.flags, kvm_clock_flags)

        try:
            msrs = vcpu.get_msrs(entries=[{"index": 0x10}])
            assert_type(msrs, kvm_msrs)
            assert_type(msrs.entries[0].data, int)
        except KvmIncomplete as error:
            assert_type(error.done, int)
            raise

        while True:
            exit = vcpu.run()
            assert_type(exit, Exit)
            assert_type(exit.exit_reason, ExitReason)
            match exit:
                case IoExit(direction=kvm_exit_io_direction.KVM_EXIT_IO_OUT):
                    assert_type(exit.port, int)
                    assert_type(exit.direction, kvm_exit_io_direction)
                    assert_type(exit.data, memoryview)
                    out += exit.data
                case MmioExit(is_write=1):
                    assert_type(exit.phys_addr, int)
                    out += b"@" + exit.data
                case HltExit():
                    break
                case InternalErrorExit():
                    assert_type(exit.suberror, kvm_internal_error_suberror)
                    raise RuntimeError(f"internal error {exit.suberror!r}")
                case _:
                    raise RuntimeError(f"unexpected {exit!r}")
        assert_type(vcpu.exit_reason, ExitReason)
    return out.decode()


if __name__ == "__main__":
    print(main())
