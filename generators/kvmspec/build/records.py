"""Structs and unions: fields, dimensions, guards, history, layout per ABI."""

from __future__ import annotations

import re
from typing import Any, Optional

from .. import expr, schema
from ..checks import check_identifier, plain_identifier
from ..diagnostics import Mark
from ..layout import ABIS, NATIVE, SCALARS, Member, record_layout
from ..load import Map, Seq
from ..model import Field, Guard, PastField, Record, SpecFile, Version
from .common import _CLASS_REP, _CLASS_REPS, _text, _product


class RecordsMixin:
    # ------------------------------------------------------------ records
    def build_record_item(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        exemption = raw.get("abi_exemption")
        return self.record(common, kind == "union", raw["fields"], raw.mark_of("fields"),
                           exemption["reason"] if exemption else None, inline=False,
                           owner=(raw[kind], common["header"]))

    def record(self, common: dict, is_union: bool, raw_fields: Seq, mark: Mark,
               exemption: Optional[str], inline: bool, owner: tuple[str, str],
               enclosing: tuple[dict, ...] = ()) -> Optional[Record]:
        """`enclosing`: the fields of the records an anonymous member belongs to, which its own
        fields may name (as C lets code name them)."""
        partial: list[dict] = []
        field_arches: list[frozenset] = []
        field_shapes: list[tuple[list, int, int]] = []   # (size and alignment per ABI, count, bits)
        # None for an ABI where a member's type is not defined (another architecture's struct)
        members_per_abi: list[Optional[list[Member]]] = [[] for _ in ABIS]
        ok = True
        for index, rf in enumerate(raw_fields):
            fmark = raw_fields.mark_of(index)
            fname = rf.get("name")
            if fname is not None and not plain_identifier(fname):
                self.report.diagnostics.extend(check_identifier(fname, rf.mark_of("name"), "field"))
            active_arches = self.guard_arches(rf.get("c_guard"))
            guard_arches = active_arches
            if "until" in rf:   # dropped before the newest release: not in its layout
                active_arches = frozenset()
            active = NATIVE.arch in active_arches
            if "c_guard" in rf:
                self.check_guard_order(rf["c_guard"], owner, rf.mark_of("c_guard"))
            info: dict[str, Any] = dict(name=fname, doc=rf.get("doc", ""), mark=fmark,
                                        reserved=bool(rf.get("reserved", False)),
                                        since=Version.parse(rf["since"]) if "since" in rf else None,
                                        deprecated=self.lifecycle(rf, "deprecated") if "deprecated" in rf else None,
                                        c_guard=Guard.parse(rf["c_guard"]) if "c_guard" in rf else None,
                                        c_comment=rf.get("c_comment", ""),
                                        c_join=bool(rf.get("c_join", False)),
                                        c_defines_type=bool(rf.get("c_defines_type", False)),
                                        active=active, valid_with=rf.get("valid_with"),
                                        active_on=tuple(a for a in self.context_arches() if a in guard_arches),
                                        until=Version.parse(rf["until"]) if "until" in rf else None,
                                        history=tuple(sorted(
                                            (PastField(Version.parse(h["until"]), h.get("name"), h.get("type"),
                                                       _text(h["array"]) if "array" in h else None,
                                                       bool(h.get("reserved", False)))
                                             for h in rf["history"]), key=lambda h: h.until)) if "history" in rf else ())
            elem_sizes: list[Optional[tuple[int, int]]] = []
            if "type" in rf:
                type_text = rf["type"]
                if type_text in SCALARS:
                    scalar = SCALARS[type_text]
                    info["scalar"] = scalar
                    elem_sizes = scalar.placed
                else:
                    rkind, rname = type_text.split(" ", 1)
                    targets = self.record_references(rkind, rname, rf.mark_of("type"), owner)
                    if targets is None:
                        ok = False
                        continue
                    info["record"] = self.native_of(targets)
                    if len(set(map(id, targets))) > 1:
                        info["records"] = tuple(targets)
                    elem_sizes = [(t.layouts[i].size, t.layouts[i].align)
                                  if t is not None and t.layouts[i] is not None else None
                                  for i, t in enumerate(targets)]
            else:
                sub_kind = "struct" if "struct" in rf else "union"
                sub = rf[sub_kind]
                sub_common = dict(common, name="", mark=rf.mark_of(sub_kind), doc=rf.get("doc", ""))
                target = self.record(sub_common, sub_kind == "union", sub["fields"], sub.mark_of("fields"),
                                     exemption, inline=True, owner=owner,
                                     enclosing=(*partial, *enclosing) if fname is None else ())
                if target is None:
                    ok = False
                    continue
                info["record"] = target
                elem_sizes = [(l.size, l.align) if l is not None else None for l in target.layouts]
                if fname is None and "array" in rf:
                    self.error(rf.mark_of("array"), "an anonymous member cannot be an array",
                               "give the member a name")
            if rf.get("c_join") and (not partial or "type" not in rf or raw_fields[index - 1].get("type") != rf["type"]
                                     or "c_guard" in rf or "c_comment" in rf):
                self.error(rf.mark_of("c_join"), "c_join: only a field of the same type as the field before it "
                                                 "can share its declaration", "remove c_join:")
            if fname is None and "type" in rf:
                self.error(fmark, "only an inline struct or union member may be anonymous",
                           "add name: to the field")
                ok = False
                continue
            dims, dims_text, flexible = self.dimensions(rf, owner)
            if dims is None:
                ok = False
                continue
            info.update(dims=dims, dims_text=dims_text, flexible=flexible)
            if "counted_by" in rf:
                # a flexible array's count comes before it; a fixed array's count of elements in use
                # may come after it (mmio.len after mmio.data), so it is looked up once all are read
                if not flexible and not dims:
                    self.error(rf.mark_of("counted_by"), "counted_by is only for an array (array: N or flexible)",
                               "remove counted_by:")
                elif flexible and not self.integer_sibling(partial, rf["counted_by"]):
                    self.error(rf.mark_of("counted_by"), f"counted_by: {rf['counted_by']} is not an integer field "
                                                         "before the array in this record",
                               "name the field that holds the number of elements")
                else:
                    info["counted_by"] = rf["counted_by"]
                    info["_counted_mark"] = rf.mark_of("counted_by")
            if "buffer" in rf:
                self.buffer(rf, partial, info)
            bits = int(rf.get("bits", 0))
            if bits:
                if "scalar" not in info or info["scalar"].is_pointer or dims or flexible:
                    self.error(rf.mark_of("bits"), "only a plain integer field can be a bit-field",
                               "remove bits: or make the field an integer scalar")
                    ok = False
                    continue
                if bits > info["scalar"].size(ABIS[0]) * 8:
                    self.error(rf.mark_of("bits"),
                               f"a {info['scalar'].name} bit-field cannot be {bits} bits wide",
                               f"use at most {info['scalar'].size(ABIS[0]) * 8} bits or a wider type")
                    ok = False
                    continue
            info["bits"] = bits
            if "flags" in rf:
                names = [rf["flags"]] if isinstance(rf["flags"], str) else list(rf["flags"])
                info["flag_sets"] = tuple(s for s in (self.reference(n, ("flags",), rf.mark_of("flags"), "flag set")
                                                      for n in names) if s is not None)
            if "enum" in rf:
                info["enum"] = self.reference(rf["enum"], ("enum",), rf.mark_of("enum"), "enum")
            field_shapes.append((elem_sizes, 0 if flexible else _product(dims), bits))
            partial.append(info)
            field_arches.append(active_arches)
        for info in partial:
            counted_mark = info.pop("_counted_mark", None)
            if counted_mark is not None and not self.integer_sibling(partial, info["counted_by"]) \
                    and not self.integer_sibling(list(enclosing), info["counted_by"]):
                self.error(counted_mark, f"counted_by: {info['counted_by']} is not an integer field of this record",
                           "name the field that holds the number of elements in use")
                ok = False
        if not ok:
            return None
        if not partial and not self.empty_allowed(owner):
            self.error(mark, "a record needs at least one field")
            return None
        # Most records look the same to every architecture: then ABIs of one layout
        # class lay them out alike, and only one ABI of each class is computed.
        everywhere = frozenset(self.all_arches)
        uniform = all(a >= everywhere for a in field_arches) and \
            all(type(shape[0]) is tuple or all(shape[0][i] == shape[0][r] for i, r in enumerate(_CLASS_REP))
                for shape in field_shapes)
        computed = _CLASS_REPS if uniform else range(len(ABIS))
        member_of = self.member_cache
        for i in computed:
            arch = ABIS[i].arch
            members = members_per_abi[i]
            for (elems, count, bits), active_arches in zip(field_shapes, field_arches):
                if arch not in active_arches:
                    continue
                placed = elems[i]
                if placed is None:
                    members = None
                    break
                key = (placed, count, bits)
                member = member_of.get(key)
                if member is None:
                    member = member_of[key] = Member(placed[0], placed[1], count, bits)
                members.append(member)   # type: ignore[union-attr]
            members_per_abi[i] = members
        laid = {i: record_layout(members_per_abi[i], is_union) if members_per_abi[i] is not None else None
                for i in computed}
        layouts = tuple(laid[i] if i in laid else laid[_CLASS_REP[i]] for i in range(len(ABIS)))
        fields = []
        index = [0] * len(ABIS)
        for info, active_arches in zip(partial, field_arches):
            column: dict[int, tuple[Optional[int], Optional[int]]] = {}
            for i in computed:
                l = laid[i]
                if l is None or ABIS[i].arch not in active_arches:
                    column[i] = (None, None)
                    continue
                placement = l.placements[index[i]]
                column[i] = (placement.offset, placement.bit_offset)
                index[i] += 1
            placed_at = [column[i] if i in column else column[_CLASS_REP[i]] for i in range(len(ABIS))]
            offsets = [o for o, _ in placed_at]
            bit_offsets = [b for _, b in placed_at]
            if not info["active"] and all(o is None for o in offsets):
                fields.append(Field(**info))
                continue
            fields.append(Field(**info, offsets=tuple(offsets), bit_offsets=tuple(bit_offsets)))
        return Record(**common, is_union=is_union, fields=tuple(fields), layouts=layouts,
                      exemption=exemption, inline=inline)

    def empty_allowed(self, owner: tuple[str, str]) -> bool:
        """Architecture headers define empty structs (GNU C) for what they do not have,
        e.g. riscv's kvm_debug_exit_arch."""
        return self.header_arch.get(owner[1]) is not None

    @staticmethod
    def native_of(targets: list) -> Any:
        """What a member of per-ABI types shows where one is wanted: the native one, else the first."""
        native = targets[ABIS.index(NATIVE)]
        return native if native is not None else next(t for t in targets if t is not None)

    def owner_name(self, symbol: str) -> str:
        """The item that defines a symbol (an enum or flag value belongs to its set)."""
        symbol = self.key(symbol)
        if symbol in self.items:
            return symbol
        owner = self.symbols[symbol].owner
        kind = schema.item_kind(owner)
        return owner[kind]

    def record_references(self, rkind: str, rname: str, mark: Mark,
                          owner: tuple[str, str]) -> Optional[list[Optional[Record]]]:
        """The record a member's type names, per ABI: the definition each ABI's
        architecture has (None where it has none), or None after reporting a problem."""
        if self.context[-1] is None and (rname in self.variants or rname in self.key_arch):
            targets: list[Optional[Record]] = []
            for abi in ABIS:
                key = self.key_on(rname, abi.arch)
                targets.append(self.record_reference(rkind, key, mark, owner) if key is not None else None)
            if all(t is None for t in targets):
                return None
            return targets
        target = self.record_reference(rkind, self.key(rname), mark, owner)
        return None if target is None else [target] * len(ABIS)

    def record_reference(self, rkind: str, rname: str, mark: Mark, owner: tuple[str, str]) -> Optional[Record]:
        entry = self.items.get(rname)
        if entry is None or entry[0] not in ("struct", "union"):
            self.error(mark, f"unknown {rkind} {rname!r}",
                       self.unknown_hint(rname, ("struct", "union"), f"define {rkind} {rname} in the spec"))
            return None
        if entry[0] != rkind:
            self.error(mark, f"{rname} is a {entry[0]}, not a {rkind}", f"write '{entry[0]} {rname}'")
            return None
        if rname in self.building:
            self.error(mark, f"{rkind} {rname} contains itself",
                       "a record cannot contain itself; use a pointer-sized __u64 instead")
            return None
        if not self.check_visible(owner, rname, mark, f"{rkind} {rname}"):
            return None
        target = self.ensure(rname, self.build_record_item, self.file_arch(entry[2]))
        return target if isinstance(target, Record) else None

    def file_arch(self, spec_file: SpecFile) -> tuple[str, ...]:
        return self.file_arches.get(spec_file.path, ())

    def dimensions(self, rf: Map, owner: tuple[str, str]) -> tuple[Optional[tuple[int, ...]], tuple[str, ...], bool]:
        if "array" not in rf:
            return (), (), False
        raw = rf["array"]
        amark = rf.mark_of("array")
        if raw == "flexible":
            return (), (), True
        entries = list(raw) if isinstance(raw, list) else [raw]
        dims: list[int] = []
        texts: list[str] = []
        for entry in entries:
            if isinstance(entry, int):
                dims.append(int(entry))
                texts.append(_text(entry))
                continue
            if isinstance(entry, str):
                for used in expr.names(self.parse_expr(entry, amark) or expr.Num(0, "", "0", 0)):
                    if self.key(used.name) in self.order and self.key(used.name) in self.symbols:
                        if not self.check_visible(owner, self.owner_name(used.name), amark, used.name):
                            return None, (), False
            if isinstance(entry, str) and self.key(entry) in self.symbols:
                values = self.symbol_values(self.key(entry))
                seen = [v for abi, v in zip(ABIS, values or ()) if abi.arch in self.context_arches()]
                if values is None or not seen or any(v is None for v in seen):
                    self.no_value(self.key(entry), amark, "size an array")
                    return None, (), False
                numbers = {v.value for v in seen}
            elif isinstance(entry, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", entry):
                self.error(amark, f"unknown constant {entry!r} as array size",
                           self.unknown_hint(entry, ("const",), "define it with a const: item earlier in the spec"))
                return None, (), False
            else:
                evaluated = self.evaluate_text(entry, amark)
                if evaluated is None:
                    return None, (), False
                numbers = {n for n in evaluated if n is not None}
            if len(numbers) != 1 or min(numbers) < 1:
                self.error(amark, f"array size {entry} must be a positive number, the same on every ABI")
                return None, (), False
            dims.append(numbers.pop())
            texts.append(entry)
        if 0 in dims and len(dims) > 1:
            self.error(amark, "a zero-length array has a single dimension")
            return None, (), False
        return tuple(dims), tuple(texts), False
