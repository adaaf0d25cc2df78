"""ABIs, scalar types, record layout and ioctl number encoding.

Everything about sizes and offsets is computed here, once, by the model;
generators only print the numbers. An ABI is data: the sizes and alignments
of C types, the byte order and the ioctl encoding of one architecture's
userspace. x86 has two (x86_64 and i386, which differ in the size of `long`
and pointers and in the alignment of 64-bit integers inside structs: 4 on
i386); powerpc has two that differ only in byte order; every other
architecture KVM supports has one LP64 ABI.
"""

from __future__ import annotations

from typing import Sequence

from .valuetype import value_type


@value_type
class IocLayout:
    """How `_IOC(dir, type, nr, size)` packs an ioctl number on an architecture.

    asm-generic (x86, arm64, riscv, s390, loongarch): 2 direction bits
    (write 1, read 2) and a 14-bit size; powerpc and mips: 3 direction bits
    (none 1, read 2, write 4) and a 13-bit size.
    """

    name: str
    size_bits: int
    dir_none: int
    dir_read: int
    dir_write: int

    @property
    def size_max(self) -> int:
        return (1 << self.size_bits) - 1

    def direction(self, direction: str) -> int:
        return {"none": self.dir_none, "r": self.dir_read, "w": self.dir_write,
                "rw": self.dir_read | self.dir_write}[direction]

    def encode(self, direction: str, type_: int, nr: int, size: int) -> int:
        size_shift = IOC_TYPESHIFT + IOC_TYPEBITS
        return (self.direction(direction) << (size_shift + self.size_bits)) | (type_ << IOC_TYPESHIFT) | \
            (nr << IOC_NRSHIFT) | (size << size_shift)


IOC_GENERIC = IocLayout("asm-generic", 14, 0, 2, 1)
IOC_3BIT = IocLayout("3-bit direction", 13, 1, 2, 4)


@value_type
class Abi:
    """One userspace ABI of one architecture: type sizes, byte order, ioctl encoding."""

    name: str
    long_bits: int
    pointer_bits: int
    u64_align: int  # alignment of a 64-bit integer member
    arch: str = "x86"
    big_endian: bool = False
    ioc: IocLayout = IOC_GENERIC
    triple: str = ""          # clang --target
    predefined: str = ""      # a C condition true for this ABI only (from the compiler's macros)
    debian: str = ""          # Debian's multiarch directory of the cross headers (/usr/<debian>/include)
    # Where Debian has no cross headers: another ABI's whose base headers (types,
    # ioctl encoding, word size, byte order) are the same asm-generic ones.
    stand_in: str = ""

    @property
    def layout_class(self) -> tuple[int, int, int]:
        """ABIs of one class lay out every record identically."""
        return (self.long_bits, self.pointer_bits, self.u64_align)


X86_64 = Abi("x86_64", 64, 64, 8, "x86", False, IOC_GENERIC, "x86_64-linux-gnu", "defined(__x86_64__)", "x86_64-linux-gnu")
I386 = Abi("i386", 32, 32, 4, "x86", False, IOC_GENERIC, "i386-linux-gnu", "defined(__i386__)", "i386-linux-gnu")
ARM64 = Abi("arm64", 64, 64, 8, "arm64", False, IOC_GENERIC, "aarch64-linux-gnu", "defined(__aarch64__)", "aarch64-linux-gnu")
RISCV64 = Abi("riscv64", 64, 64, 8, "riscv", False, IOC_GENERIC, "riscv64-linux-gnu", "defined(__riscv) && __riscv_xlen == 64",
              "riscv64-linux-gnu")
S390X = Abi("s390x", 64, 64, 8, "s390", True, IOC_GENERIC, "s390x-linux-gnu", "defined(__s390x__)", "s390x-linux-gnu")
PPC64LE = Abi("ppc64le", 64, 64, 8, "ppc", False, IOC_3BIT, "powerpc64le-linux-gnu",
              "defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)",
              "powerpc64le-linux-gnu")
PPC64 = Abi("ppc64", 64, 64, 8, "ppc", True, IOC_3BIT, "powerpc64-linux-gnu",
            "defined(__powerpc64__) && defined(__BIG_ENDIAN__)",
            "powerpc64-linux-gnu", stand_in="powerpc64le-linux-gnu")
MIPS64 = Abi("mips64", 64, 64, 8, "mips", False, IOC_3BIT, "mips64el-linux-gnuabi64",
             "defined(__mips64) && defined(_ABI64)",
             "mips64el-linux-gnuabi64")
LOONGARCH64 = Abi("loongarch64", 64, 64, 8, "loongarch", False, IOC_GENERIC, "loongarch64-linux-gnu",
                  "defined(__loongarch64)", "loongarch64-linux-gnu", stand_in="riscv64-linux-gnu")
ABIS: tuple[Abi, ...] = (X86_64, I386, ARM64, RISCV64, S390X, PPC64LE, PPC64, MIPS64, LOONGARCH64)
NATIVE = X86_64
ABI_INDEX: dict[str, int] = {abi.name: i for i, abi in enumerate(ABIS)}
# The ABIs of the architecture the bindings, conformance tests and probe serve today.
HOST_ABIS: tuple[Abi, ...] = tuple(abi for abi in ABIS if abi.arch == NATIVE.arch)
HOST_INDEXES: tuple[int, ...] = tuple(ABI_INDEX[abi.name] for abi in HOST_ABIS)


def host(values: Sequence) -> tuple:
    """Per-ABI values narrowed to HOST_ABIS (the outputs that serve x86 userspace)."""
    return tuple(values[i] for i in HOST_INDEXES) if values else ()


def abis_of(arch: str) -> tuple[Abi, ...]:
    """The ABIs userspace of one architecture may use."""
    return tuple(abi for abi in ABIS if abi.arch == arch)


def abi_indexes(arches: Sequence[str]) -> tuple[int, ...]:
    """Positions in ABIS of the ABIs of some architectures (every ABI for an empty list)."""
    return tuple(i for i, abi in enumerate(ABIS) if not arches or abi.arch in arches)


@value_type
class Scalar:
    """A uapi scalar type (`__u32`, `unsigned long`, `void *` ...)."""

    name: str        # as written in C
    signed: bool
    sizes: tuple[int, ...]   # per ABI, in ABIS order
    aligns: tuple[int, ...]
    ctype: str       # ctypes spelling for the Python bindings
    is_pointer: bool = False

    @property
    def placed(self) -> tuple[tuple[int, int], ...]:
        """(size, alignment) per ABI."""
        return _PLACED[self.name]

    def size(self, abi: Abi) -> int:
        return self.sizes[ABI_INDEX[abi.name]]

    def align(self, abi: Abi) -> int:
        return self.aligns[ABI_INDEX[abi.name]]

    def bits(self, abi: Abi) -> int:
        return self.size(abi) * 8

    def holds(self, value: int, abi: Abi) -> bool:
        bits = self.bits(abi)
        if self.signed:
            return -(1 << (bits - 1)) <= value < (1 << (bits - 1))
        return 0 <= value < (1 << bits)


def _scalar(name: str, signed: bool, size: int, ctype: str, *, long: bool = False, pointer: bool = False,
            natural: bool = False) -> Scalar:
    """A scalar laid out by each ABI's rules: `long`-sized ones follow long_bits, 64-bit
    integers align to u64_align unless `natural` (__aligned_u64)."""
    sizes, aligns = [], []
    for abi in ABIS:
        n = (abi.pointer_bits if pointer else abi.long_bits) // 8 if long or pointer else size
        sizes.append(n)
        aligns.append(abi.u64_align if n == 8 and not natural else n)
    return Scalar(name, signed, tuple(sizes), tuple(aligns), ctype, pointer)


SCALARS: dict[str, Scalar] = {s.name: s for s in (
    _scalar("__u8", False, 1, "ctypes.c_uint8"),
    _scalar("__s8", True, 1, "ctypes.c_int8"),
    _scalar("char", True, 1, "ctypes.c_char"),
    _scalar("__u16", False, 2, "ctypes.c_uint16"),
    _scalar("__s16", True, 2, "ctypes.c_int16"),
    _scalar("__u32", False, 4, "ctypes.c_uint32"),
    _scalar("__s32", True, 4, "ctypes.c_int32"),
    _scalar("int", True, 4, "ctypes.c_int"),
    _scalar("unsigned int", False, 4, "ctypes.c_uint"),
    _scalar("__u64", False, 8, "ctypes.c_uint64"),
    _scalar("__s64", True, 8, "ctypes.c_int64"),
    _scalar("__aligned_u64", False, 8, "_aligned_u64", natural=True),
    _scalar("long", True, 8, "ctypes.c_long", long=True),
    _scalar("unsigned long", False, 8, "ctypes.c_ulong", long=True),
    _scalar("void *", False, 8, "ctypes.c_void_p", pointer=True),
    _scalar("__u8 *", False, 8, "ctypes.c_void_p", pointer=True),
    # s390's kvm_guest_debug_arch.hw_bp points to an array of breakpoints
    _scalar("struct kvm_hw_breakpoint *", False, 8, "ctypes.c_void_p", pointer=True),
    # arm64's FP/SIMD registers (struct user_fpsimd_state): 16 bytes, 16-byte aligned.
    _scalar("__uint128_t", False, 16, "_uint128"),
)}


_PLACED = {s.name: tuple(zip(s.sizes, s.aligns)) for s in SCALARS.values()}


@value_type
class Member:
    """What the layout algorithm needs to know about one member."""

    size: int        # of one element
    align: int
    count: int = 1   # array elements (product of dimensions); 0 for [0] and []
    bits: int = 0    # bit-field width, 0 if not a bit-field


@value_type
class Placement:
    offset: int      # byte offset (of the storage unit, for bit-fields)
    bit_offset: int  # offset in bits from the start of the record


@value_type
class Layout:
    size: int
    align: int
    placements: tuple[Placement, ...]
    holes: tuple[tuple[int, int], ...]  # (offset, size) of compiler-inserted padding


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


_LAYOUTS: dict = {}   # record_layout's: ABIs of one layout class ask for the same members


def record_layout(members: Sequence[Member], is_union: bool) -> Layout:
    """Lay out a struct or union the way GCC does on the System V ABIs."""
    key = (tuple(members), is_union)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS[key] = _record_layout(key[0], is_union)
    return layout


def _record_layout(members: Sequence[Member], is_union: bool) -> Layout:
    align = 1
    placements = []
    holes = []
    if is_union:
        size = 0
        for m in members:
            align = max(align, m.align)
            size = max(size, m.size * m.count if not m.bits else m.size)
            placements.append(Placement(0, 0))
        total = _round_up(size, align)
        if total > size and members:
            holes.append((size, total - size))
        return Layout(total, align, tuple(placements), tuple(holes))

    bit_pos = 0  # next free bit
    for m in members:
        align = max(align, m.align)
        if m.bits:
            unit_bits = m.size * 8
            start = bit_pos
            # A bit-field may not straddle a boundary of its own type's size.
            if start // unit_bits != (start + m.bits - 1) // unit_bits:
                start = _round_up(start, unit_bits)
            if start > bit_pos and bit_pos % 8 == 0 and start % 8 == 0:
                holes.append((bit_pos // 8, (start - bit_pos) // 8))
            placements.append(Placement(start // unit_bits * m.size, start))
            bit_pos = start + m.bits
            continue
        byte_pos = _round_up(bit_pos, 8) // 8
        offset = _round_up(byte_pos, m.align)
        if offset > byte_pos:
            holes.append((byte_pos, offset - byte_pos))
        placements.append(Placement(offset, offset * 8))
        bit_pos = (offset + m.size * m.count) * 8
    end = _round_up(bit_pos, 8) // 8
    total = _round_up(end, align)
    if total > end:
        holes.append((end, total - end))
    return Layout(total, align, tuple(placements), tuple(holes))


# --------------------------------------------------------------- ioctls

IOC_NRBITS, IOC_TYPEBITS = 8, 8
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_MACROS = {"none": "_IO", "r": "_IOR", "w": "_IOW", "rw": "_IOWR"}
# The largest size any ABI can encode; each ABI checks its own (abi.ioc.size_max).
IOC_SIZE_MAX = IOC_GENERIC.size_max


def ioc(direction: str, type_: int, nr: int, size: int, abi: Abi = NATIVE) -> int:
    """The number `_IOC(dir, type, nr, size)` as the ABI's <asm/ioctl.h> makes it."""
    return abi.ioc.encode(direction, type_, nr, size)
