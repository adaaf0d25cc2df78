"""Python bindings for every ABI: `kvm_uapi.abis`, the records, constants and ioctl
numbers of any architecture, for tools that decode another machine's state
(an arm64 `kvm_regs` read from a migration stream on an x86 host).

The newest release's definitions; the layouts are the model's, per ABI: each record becomes a table of member
offsets, shared by the ABIs that lay it out alike, from which the package
builds ctypes classes on demand (packed, with explicit padding, big-endian
where the ABI is), so a foreign layout does not depend on the host's C ABI.
"""

from __future__ import annotations

from typing import Optional

from ..layout import ABIS, Abi
from ..model import Capability, Constant, ExitReason, Ioctl, Model, Record, ValueSet

# Scalars by size and signedness; `long` and pointers take the ABI's sizes.
_CODES = {(1, False): "u8", (1, True): "s8", (2, False): "u16", (2, True): "s16",
          (4, False): "u32", (4, True): "s32", (8, False): "u64", (8, True): "s64",
          (16, False): "u128"}   # arm64's __uint128_t vector registers


class _Layouts:
    """Record layouts as tables, each distinct table once."""

    def __init__(self) -> None:
        self.tables: list[tuple] = []
        self.index: dict[tuple, int] = {}
        self.done: dict[tuple, Optional[int]] = {}

    def add(self, table: tuple) -> int:
        found = self.index.get(table)
        if found is None:
            found = self.index[table] = len(self.tables)
            self.tables.append(table)
        return found

    def record(self, record: Record, abi: Abi, position: int, name: str) -> Optional[int]:
        layout = record.layouts[position]
        if layout is None:
            return None
        # ABIs of one layout class share the layout object of a record that every
        # architecture sees alike: its table is the same too.
        key = (id(record), id(layout), abi.long_bits, abi.pointer_bits)
        if key in self.done:
            return self.done[key]
        self.done[key] = found = self._record(record, abi, position, name)
        return found

    def _record(self, record: Record, abi: Abi, position: int, name: str) -> Optional[int]:
        layout = record.layouts[position]
        members = []
        for f in record.fields:   # those in this ABI's layout have an offset on it
            offset = f.offsets[position] if position < len(f.offsets) else None
            if offset is None:
                continue
            dims = (0,) if f.flexible else f.dims
            if f.scalar is not None:
                code = "ptr" if f.scalar.is_pointer else \
                    "char" if f.scalar.name == "char" else _CODES[(f.scalar.size(abi), f.scalar.signed)]
                if f.bits:
                    members.append((f"_bits_{offset}", offset, ("scalar", code, ())))
                else:
                    members.append((f.name, offset, ("scalar", code, dims)))
                continue
            inner = f.record_at(abi)
            if inner is None:
                return None
            inner_id = self.record(inner, abi, position, f"{name}.{f.name or ''}")
            if inner_id is None:
                return None
            members.append((f.name, offset, ("record", inner_id, dims)))
        # bit-fields sharing a storage unit become one raw member
        members = list(dict.fromkeys(members))
        return self.add(("union" if record.is_union else "struct", record.name or name, layout.size,  # type: ignore[union-attr]
                         tuple(members)))


def abi_tables(model: Model) -> tuple[list[tuple], dict[str, dict]]:
    """(layout tables, {ABI name: its records, constants and ioctl numbers})."""
    layouts = _Layouts()
    abis: dict[str, dict] = {}
    for position, abi in enumerate(ABIS):
        records: dict[str, int] = {}
        constants: dict[str, int] = {}
        ioctls: dict[str, int] = {}
        for item in model.items:
            if item.removed is not None or abi.arch not in item.active_on:
                continue
            if isinstance(item, Record) and item.name:
                table = layouts.record(item, abi, position, item.name)
                if table is not None:
                    records[item.name] = table
            elif isinstance(item, Constant) and item.values and item.values[position] is not None:
                constants[item.name] = item.values[position]
            elif isinstance(item, ValueSet):
                for v in item.values:
                    if v.values and v.values[position] is not None:
                        constants[v.name] = v.values[position]
            elif isinstance(item, (Capability, ExitReason)):
                constants[item.name] = item.value
            elif isinstance(item, Ioctl) and item.numbers and item.numbers[position] is not None:
                ioctls[item.name] = item.numbers[position]
        abis[abi.name] = dict(arch=abi.arch, big_endian=abi.big_endian, long=abi.long_bits // 8,
                              pointer=abi.pointer_bits // 8, records=records, constants=constants, ioctls=ioctls)
    return layouts.tables, abis


class Generator:
    name = "python_abis"

    def render(self, model: Model, env) -> dict[str, str]:
        tables, abis = abi_tables(model)
        return {"python/kvm_uapi/abis.py": env.get_template("python_abis/abis.py.j2").render(
            tables=tables, abis=abis, sources=[f.path for f in model.files])}
