"""Documentation/virt/kvm/api.rst in the kernel's format, from the model."""

from __future__ import annotations

from ..model import Capability, Constant, Enum, FlagSet, Ioctl, Model, Record


def referenced_records(record: Record) -> list[Record]:
    """The record and every named record it contains, innermost first, once each."""
    seen: list[Record] = []

    def visit(rec: Record) -> None:
        for f in rec.fields:
            if f.record is not None:
                if f.record.inline:
                    visit(f.record)
                elif f.record not in seen:
                    visit(f.record)
        if not rec.inline and rec not in seen:
            seen.append(rec)

    visit(record)
    return seen


def value_sets(records: list[Record]) -> list[tuple[str, FlagSet | Enum]]:
    """(field path, flag set or enum) for every field of the records that has one."""
    found = []
    for rec in records:
        for path, f, _ in rec.walk():
            for value_set in f.value_sets:
                if all(v is not value_set for _, v in found):
                    found.append((f"{rec.name}.{path}", value_set))
    return found


class Generator:
    name = "rst"

    def render(self, model: Model, env) -> dict[str, str]:
        ioctls = [i for i in model.ioctls if i.emitted]
        caps = [c for c in model.capabilities if c.emitted]
        listings = {}
        for ioctl in ioctls:
            records = referenced_records(ioctl.arg_record) if ioctl.arg_record is not None else []
            listings[ioctl.name] = (records, value_sets(records))
        shown_sets = {id(vs) for records, sets in listings.values() for _, vs in sets}
        other_sets = [i for i in model.items if isinstance(i, (Enum, FlagSet)) and i.emitted
                      and id(i) not in shown_sets]
        sources = list(dict.fromkeys(f.path for f in model.files))
        text = env.get_template("rst/api.rst.j2").render(
            model=model, ioctls=ioctls, listings=listings, sources=sources,
            vcpu_caps=[c for c in caps if c.enable_scope == "vcpu"],
            vm_caps=[c for c in caps if c.enable_scope == "vm"],
            other_caps=[c for c in caps if c.enable_scope is None],
            constants=[i for i in model.items if isinstance(i, Constant) and i.emitted],
            other_sets=other_sets, exits=[e for e in model.items if e.kind == "exit" and e.emitted],
            gated_by=model.gated_by)
        index = env.get_template("rst/capabilities.rst.j2").render(caps=caps, sources=sources,
                                                                  gated_by=model.gated_by)
        return {"Documentation/virt/kvm/api.rst": text,
                "Documentation/virt/kvm/capabilities.rst": index}
