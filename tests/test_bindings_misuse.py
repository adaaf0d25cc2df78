"""The generated bindings under misuse: every wrong argument is a clear Python exception.

What kvm_uapi.api promises (its module docstring): arguments are checked
before anything reaches the kernel, and wrong ones raise TypeError (wrong
type) or ValueError (wrong value, wrong buffer size, closed descriptor);
failures in the kernel raise KvmError (an OSError). Property tests feed the
checks and the API wrong values of every kind; the calls that could hurt
the interpreter if a check were missing (buffers the kernel writes into,
closed and foreign descriptors) run in a child process that must exit
normally.
"""

from __future__ import annotations

import array
import ctypes
import inspect
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import kvm_uapi as K
from kvm_uapi import _runtime
from kvm_uapi import api as A

CHECKS = settings(deadline=None, derandomize=True, database=None, max_examples=150,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

CLEAR = (TypeError, ValueError)

# Anything a caller might pass where an integer is expected.
anything = st.one_of(
    st.integers(), st.integers(-(2**70), 2**70), st.sampled_from([2**64, 2**63, -1, -(2**63) - 1, 10**100]),
    st.booleans(), st.none(), st.floats(allow_nan=True), st.text(max_size=5), st.binary(max_size=5),
    st.builds(object), st.lists(st.integers(), max_size=3), st.builds(complex, st.floats(), st.floats()),
)


def records_with_rules() -> list[type]:
    return sorted(A._RULES, key=lambda c: c.__name__)


# ------------------------------------------------------------------ the checks themselves


@CHECKS
@given(value=anything, bits=st.sampled_from([1, 3, 8, 16, 32, 64]), signed=st.booleans())
def test_check_int_accepts_exactly_the_ints_that_fit(value, bits, signed):
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    fits = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    try:
        assert _runtime.check_int("x", value, bits, signed) == value and fits
    except TypeError as exc:
        assert not isinstance(value, int) or isinstance(value, bool), exc
    except ValueError as exc:
        assert isinstance(value, int) and not fits, exc
        assert "does not fit" in str(exc)


@CHECKS
@given(cls=st.sampled_from(records_with_rules()), data=st.data())
def test_building_an_input_struct_from_fields_checks_every_field(cls, data):
    names = [f[0] for f in cls._fields_]
    name = data.draw(st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=8)), label="field")
    value = data.draw(anything, label="value")
    try:
        obj = A._record(cls, None, {name: value}, "arg")
    except CLEAR:
        return
    assert isinstance(obj, cls) or type(obj)._sized_from_ is cls   # a sequence for the flexible array sizes it
    rule = {r[0]: r for r in A._RULES[cls]}.get(name)
    if rule is not None and rule[3] == 1:
        assert getattr(obj, name) == value   # nothing was silently truncated


@CHECKS
@given(cls=st.sampled_from(records_with_rules()), data=st.data())
def test_any_buffer_is_a_struct_of_the_right_size_or_a_clear_error(cls, data):
    size = ctypes.sizeof(cls)
    arg = data.draw(st.one_of(
        st.builds(bytearray, st.integers(0, 2 * size)),
        st.builds(bytes, st.integers(0, 2 * size)),
        st.integers(0, 2 * size).map(lambda n: memoryview(bytearray(n))),
        st.integers(0, 2 * size).map(lambda n: memoryview(bytearray(2 * n))[::2]),
        st.integers(0, size).map(lambda n: array.array("I", bytes(4 * n))),
        st.sampled_from([K.kvm_regs, K.kvm_sregs, K.kvm_msrs, K.kvm_cpuid2, cls]).map(lambda c: c()),
        st.integers(0, 4).map(lambda n: A.sized(K.kvm_msrs, n)),
        st.integers(1, 64).map(lambda n: (ctypes.c_char * n)()),
        anything,
    ), label="buffer")
    try:
        obj = _runtime.check_buffer("arg", arg, cls)
    except CLEAR:
        return
    assert isinstance(obj, cls)
    assert memoryview(arg).nbytes >= size


@CHECKS
@given(cls=st.one_of(st.sampled_from([K.kvm_msrs, K.kvm_cpuid2, K.kvm_regs, K.kvm_irq_routing]), anything),
       count=anything)
def test_sized_makes_room_or_says_why_not(cls, count):
    try:
        obj = A.sized(cls, count)
    except CLEAR:
        return
    name, array_type = obj._fields_[-1][:2]
    assert array_type._length_ == count
    assert ctypes.sizeof(obj) == ctypes.sizeof(cls) + count * ctypes.sizeof(array_type._type_)


@CHECKS
@given(fd=anything)
def test_a_descriptor_is_a_c_int(fd):
    assume(not (isinstance(fd, int) and not isinstance(fd, bool) and 0 <= fd <= 0x7FFFFFFF))
    with pytest.raises(CLEAR):
        _runtime.FileDescriptor(fd)


def test_a_failed_constructor_leaves_nothing_for_the_finalizer(tmp_path):
    # __del__ of a half-made descriptor used to print "Exception ignored ... AttributeError"
    code = "import gc, kvm_uapi.api as A\n" \
           "for bad in (-1, 2**40, 'x', None):\n" \
           "    try: A.Kvm.__new__(A.Kvm).__init__(bad)\n" \
           "    except Exception: pass\n" \
           "gc.collect()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# ------------------------------------------------------------------ against the kernel


@pytest.fixture(scope="module")
def kvm():
    try:
        handle = A.Kvm()
    except OSError as exc:
        pytest.skip(f"no usable /dev/kvm here: {exc}")
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def vm(kvm):
    with kvm.create_vm() as handle:
        yield handle


@pytest.fixture(scope="module")
def vcpu(kvm):
    with kvm.create_vm() as own_vm, own_vm.create_vcpu(0) as handle:
        yield handle


@CHECKS
@given(capability=anything)
def test_check_extension_takes_any_value(kvm, capability):
    try:
        assert kvm.check_extension(capability) >= 0
    except CLEAR:
        pass


@CHECKS
@given(vcpu_id=anything)
def test_create_vcpu_with_any_id(vm, vcpu_id):
    try:
        created = vm.create_vcpu(vcpu_id)
    except CLEAR:
        return
    except A.KvmError as exc:
        assert exc.ioctl == "KVM_CREATE_VCPU"
        return
    created.close()


@CHECKS
@given(data=st.data())
def test_set_regs_with_any_fields(vcpu, data):
    names = [f[0] for f in K.kvm_regs._fields_]
    fields = data.draw(st.dictionaries(st.one_of(st.sampled_from(names), st.text(max_size=6)), anything, max_size=3))
    try:
        vcpu.set_regs(**fields)
    except CLEAR:
        return
    regs = vcpu.get_regs()
    for name, value in fields.items():
        if name == "rflags":  # bit 1 of RFLAGS is reserved and always reads as 1
            value |= 2
        assert getattr(regs, name) == value


@CHECKS
@given(count=st.integers(0, 300), room=st.integers(0, 8))
def test_a_count_larger_than_the_buffer_never_reaches_the_kernel(kvm, count, room):
    cpuid = A.sized(K.kvm_cpuid2, room)
    cpuid.nent = min(count, 2**32 - 1)
    try:
        kvm.get_supported_cpuid(cpuid)
    except ValueError as exc:
        assert count > room and "sized(kvm_cpuid2" in str(exc)
    except A.KvmError as exc:
        assert count <= room and exc.errno_name == "E2BIG"


def test_every_method_of_a_closed_descriptor_says_it_is_closed(kvm):
    vm = kvm.create_vm()
    vcpu = vm.create_vcpu(0)
    vcpu.close()
    vm.close()
    checked = 0
    for obj in (vm, vcpu):
        for name, method in vars(type(obj)).items():
            if name.startswith("_") or not callable(method) or name in ("close",):
                continue
            params = [p for p in inspect.signature(method).parameters.values()
                      if p.name != "self" and p.default is p.empty and p.kind is not p.VAR_KEYWORD]
            args = [0] * sum(1 for p in params if p.kind is not p.VAR_POSITIONAL)
            with pytest.raises(ValueError, match=f"{type(obj).__name__} is closed"):
                getattr(obj, name)(*args)
            checked += 1
    assert checked > 50


RISKY = textwrap.dedent("""\
    import ctypes, errno, os, random
    import kvm_uapi as K, kvm_uapi.api as A
    rng = random.Random(1)
    kvm = A.Kvm()
    vm = kvm.create_vm()
    vcpu = vm.create_vcpu(0)
    outcomes = {}

    def attempt(label, call):
        try:
            call()
            outcome = "ok"
        except (TypeError, ValueError) as exc:
            outcome = type(exc).__name__
        except OSError as exc:   # KvmError, or os.close() of a descriptor closed elsewhere
            outcome = getattr(exc, "errno_name", None) or errno.errorcode.get(exc.errno, "OSError")
        outcomes.setdefault(label, set()).add(outcome)

    keep = [bytearray(64) for _ in range(2000)]   # heap neighbours a stray write would hit
    for _ in range(300):
        room, count = rng.randrange(0, 6), rng.randrange(0, 400)
        cpuid = A.sized(K.kvm_cpuid2, room); cpuid.nent = count
        attempt("get_supported_cpuid", lambda: kvm.get_supported_cpuid(cpuid))
        attempt("get_supported_cpuid(fields)", lambda: kvm.get_supported_cpuid(nent=count))
        msrs = A.sized(K.kvm_msrs, room); msrs.nmsrs = count
        for i in range(room):
            msrs.entries[i].index = 0x10   # the TSC: readable, so the kernel would go on writing
        attempt("get_msrs", lambda: vcpu.get_msrs(msrs))
        attempt("get_msrs(bytes)", lambda: vcpu.get_msrs(bytearray(rng.randrange(0, 64))))
        listing = A.sized(K.kvm_msr_list, room); listing.nmsrs = count
        attempt("get_msr_index_list", lambda: kvm.get_msr_index_list(listing))
        attempt("get_xsave2", lambda: vcpu.get_xsave2(bytearray(rng.randrange(4096, 4200))))
        attempt("set_signal_mask", lambda: vcpu.set_signal_mask(len=count))
    # a view of kvm_run outlives its vCPU
    run = vcpu.kvm_run
    vcpu.close()
    run.exit_reason
    attempt("closed run", vcpu.run)
    attempt("closed kvm_run", lambda: vcpu.kvm_run)
    # a descriptor closed behind the object's back
    other = kvm.create_vm()
    os.close(other.fileno())
    attempt("foreign close", lambda: other.create_vcpu(0))
    attempt("close again", other.close)
    del keep
    import gc; gc.collect()
    for label, seen in sorted(outcomes.items()):
        print(label, "|", sorted(seen))
    print("survived")
""")


def test_risky_calls_never_crash_the_interpreter(kvm):
    proc = subprocess.run([sys.executable, "-c", RISKY], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.stdout.rstrip().endswith("survived")
    outcomes = dict(line.split(" | ", 1) for line in proc.stdout.splitlines()[:-1])
    assert "ValueError" in outcomes["get_supported_cpuid"]       # counts beyond the buffer were refused
    assert "ValueError" in outcomes["get_msrs"]
    assert outcomes["closed run"] == "['ValueError']"
    assert outcomes["closed kvm_run"] == "['ValueError']"
    assert outcomes["foreign close"] == "['EBADF']"
    assert outcomes["close again"] == "['EBADF']"
