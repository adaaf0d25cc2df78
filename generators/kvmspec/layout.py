"""ABIs, scalar types, record layout and ioctl number encoding.

Everything about sizes and offsets is computed here, once, by the model;
generators only print the numbers. Two ABIs matter for x86 userspace:
x86_64 and i386, which differ in the size of `long` and pointers and in the
alignment of 64-bit integers inside structs (4 on i386).
"""

from __future__ import annotations

from typing import Sequence

from .valuetype import value_type


@value_type
class Abi:
    name: str
    long_bits: int
    pointer_bits: int
    u64_align: int  # alignment of a 64-bit integer member


X86_64 = Abi("x86_64", 64, 64, 8)
I386 = Abi("i386", 32, 32, 4)
ABIS: tuple[Abi, ...] = (X86_64, I386)
NATIVE = X86_64


@value_type
class Scalar:
    """A uapi scalar type (`__u32`, `unsigned long`, `void *` ...)."""

    name: str        # as written in C
    signed: bool
    sizes: tuple[int, ...]   # per ABI, in ABIS order
    aligns: tuple[int, ...]
    ctype: str       # ctypes spelling for the Python bindings
    is_pointer: bool = False

    def size(self, abi: Abi) -> int:
        return self.sizes[ABIS.index(abi)]

    def align(self, abi: Abi) -> int:
        return self.aligns[ABIS.index(abi)]

    def bits(self, abi: Abi) -> int:
        return self.size(abi) * 8

    def holds(self, value: int, abi: Abi) -> bool:
        bits = self.bits(abi)
        if self.signed:
            return -(1 << (bits - 1)) <= value < (1 << (bits - 1))
        return 0 <= value < (1 << bits)


def _scalar(name: str, signed: bool, size64: int, size32: int, align32: int, ctype: str,
            pointer: bool = False) -> Scalar:
    return Scalar(name, signed, (size64, size32), (size64, align32), ctype, pointer)


SCALARS: dict[str, Scalar] = {s.name: s for s in (
    _scalar("__u8", False, 1, 1, 1, "ctypes.c_uint8"),
    _scalar("__s8", True, 1, 1, 1, "ctypes.c_int8"),
    _scalar("char", True, 1, 1, 1, "ctypes.c_char"),
    _scalar("__u16", False, 2, 2, 2, "ctypes.c_uint16"),
    _scalar("__s16", True, 2, 2, 2, "ctypes.c_int16"),
    _scalar("__u32", False, 4, 4, 4, "ctypes.c_uint32"),
    _scalar("__s32", True, 4, 4, 4, "ctypes.c_int32"),
    _scalar("int", True, 4, 4, 4, "ctypes.c_int"),
    _scalar("unsigned int", False, 4, 4, 4, "ctypes.c_uint"),
    _scalar("__u64", False, 8, 8, 4, "ctypes.c_uint64"),
    _scalar("__s64", True, 8, 8, 4, "ctypes.c_int64"),
    _scalar("__aligned_u64", False, 8, 8, 8, "_aligned_u64"),
    _scalar("long", True, 8, 4, 4, "ctypes.c_long"),
    _scalar("unsigned long", False, 8, 4, 4, "ctypes.c_ulong"),
    _scalar("void *", False, 8, 4, 4, "ctypes.c_void_p", pointer=True),
    _scalar("__u8 *", False, 8, 4, 4, "ctypes.c_void_p", pointer=True),
    # arm64's FP/SIMD registers (struct user_fpsimd_state); only LP64 ABIs have it.
    Scalar("__uint128_t", False, (16, 16), (16, 16), "_uint128"),
)}


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


def record_layout(members: Sequence[Member], is_union: bool) -> Layout:
    """Lay out a struct or union the way GCC does on the System V ABIs."""
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

IOC_NRBITS, IOC_TYPEBITS, IOC_SIZEBITS, IOC_DIRBITS = 8, 8, 14, 2
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_DIRECTIONS = {"none": 0, "w": 1, "r": 2, "rw": 3}   # _IOC_WRITE = 1, _IOC_READ = 2
IOC_MACROS = {"none": "_IO", "r": "_IOR", "w": "_IOW", "rw": "_IOWR"}
IOC_SIZE_MAX = (1 << IOC_SIZEBITS) - 1


def ioc(direction: str, type_: int, nr: int, size: int) -> int:
    """The number `_IOC(dir, type, nr, size)` from <asm-generic/ioctl.h>."""
    return (IOC_DIRECTIONS[direction] << IOC_DIRSHIFT) | (type_ << IOC_TYPESHIFT) | \
        (nr << IOC_NRSHIFT) | (size << IOC_SIZESHIFT)
