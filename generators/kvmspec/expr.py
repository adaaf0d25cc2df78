"""C integer constant expressions, parsed once and evaluated as a C compiler would.

Spec values may be written as C expressions ("(1 << 3)", "KVM_REG_X86 | 0x10",
"((__u32)(-1))"). The C header prints them as written; everything else needs
the number. Evaluation follows C's rules for integer types (literal types,
promotions, usual arithmetic conversions, unsigned wrap-around) for a given
ABI, because `-1ul` is not the same number on x86_64 and i386.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, Union

from .valuetype import value_type

# ---------------------------------------------------------------- C types


@value_type
class IntType:
    """A C integer type under one ABI."""

    name: str
    rank: int
    signed: bool
    bits: int

    def wrap(self, value: int) -> int:
        value &= (1 << self.bits) - 1
        if self.signed and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value

    def holds(self, value: int) -> bool:
        if self.signed:
            return -(1 << (self.bits - 1)) <= value < (1 << (self.bits - 1))
        return 0 <= value < (1 << self.bits)


def int_types(long_bits: int) -> dict[str, IntType]:
    """The C integer types of an ABI whose `long` has `long_bits` bits."""
    return {
        "char": IntType("char", 1, True, 8),
        "signed char": IntType("signed char", 1, True, 8),
        "unsigned char": IntType("unsigned char", 1, False, 8),
        "short": IntType("short", 2, True, 16),
        "unsigned short": IntType("unsigned short", 2, False, 16),
        "int": IntType("int", 3, True, 32),
        "unsigned int": IntType("unsigned int", 3, False, 32),
        "long": IntType("long", 4, True, long_bits),
        "unsigned long": IntType("unsigned long", 4, False, long_bits),
        "long long": IntType("long long", 5, True, 64),
        "unsigned long long": IntType("unsigned long long", 5, False, 64),
    }


INT = int_types(64)["int"]   # the same on every ABI


# Spellings accepted in casts, mapped to the C type they name.
CAST_TYPES = {
    "__u8": "unsigned char", "__s8": "signed char", "__u16": "unsigned short", "__s16": "short",
    "__u32": "unsigned int", "__s32": "int", "__u64": "unsigned long long", "__s64": "long long",
    "char": "char", "int": "int", "unsigned": "unsigned int", "unsigned int": "unsigned int",
    "long": "long", "unsigned long": "unsigned long", "long long": "long long",
    "unsigned long long": "unsigned long long", "short": "short", "unsigned short": "unsigned short",
}


@value_type
class Value:
    value: int
    type: IntType


class ExprError(Exception):
    """A problem with an expression; `column` counts from 0 within its text."""

    def __init__(self, message: str, column: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint


# ---------------------------------------------------------------- syntax tree


@value_type
class Num:
    value: int
    suffix: str
    text: str
    pos: int


@value_type
class Name:
    name: str
    pos: int


@value_type
class Unary:
    op: str
    operand: "Node"
    pos: int


@value_type
class Binary:
    op: str
    left: "Node"
    right: "Node"
    pos: int


@value_type
class Cond:
    test: "Node"
    then: "Node"
    orelse: "Node"
    pos: int


@value_type
class Cast:
    type_name: str
    operand: "Node"
    pos: int


@value_type
class Sizeof:
    type_name: str       # "struct kvm_run", "__u64", ...
    pos: int


@value_type
class Call:
    name: str
    args: tuple["Node", ...]
    pos: int


@value_type
class Member:
    """`base.member`: only meaningful as (part of) the member designator of offsetof."""

    base: "Node"
    member: str
    pos: int


@value_type
class Index:
    """`base[index]`: only meaningful as (part of) the member designator of offsetof."""

    base: "Node"
    index: "Node"
    pos: int


@value_type
class Offsetof:
    """`offsetof(struct NAME, designator)`: the byte offset of a member."""

    type_name: str
    designator: "Node"   # a Name, Member or Index chain (or a macro parameter standing for one)
    pos: int


@value_type
class Paste:
    """`A ## n ## B`: a name pasted together from literal parts and macro parameters."""

    parts: tuple[str, ...]
    pos: int


Node = Union[Num, Name, Unary, Binary, Cond, Cast, Call, Sizeof, Member, Index, Offsetof, Paste]

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+)
  | (?P<num>(?:0[xX][0-9A-Fa-f]+|[0-9]+)[uUlL]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\#\#|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!()<>?:,.\[\]])
""", re.VERBOSE)

_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m and text[pos] in "\r\n":
            raise ExprError("an expression must be on one line", pos,
                            "it is emitted into a #define, which ends at the line break")
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos,
                            "expressions use integers, names, parentheses and C operators")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, text, pos = self.take()
        if text != value:
            found = repr(text) if kind != "end" else "the end"
            raise ExprError(f"expected {value!r}, found {found}", pos)

    def parse(self) -> Node:
        node = self.conditional()
        kind, text, pos = self.peek()
        if kind != "end":
            raise ExprError(f"unexpected {text!r} after a complete expression", pos)
        return node

    def conditional(self) -> Node:
        test = self.binary(1)
        kind, text, pos = self.peek()
        if text == "?":
            self.take()
            then = self.conditional()
            self.expect(":")
            orelse = self.conditional()
            return Cond(test, then, orelse, pos)
        return test

    def binary(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            kind, text, pos = self.peek()
            prec = _BINARY_PRECEDENCE.get(text) if kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.binary(prec + 1)
            left = Binary(text, left, right, pos)

    def _cast_type(self) -> str | None:
        """If a '(' starts a cast, consume through ')' and return the type."""
        words = []
        j = self.i + 1
        while self.tokens[j][0] == "name":
            words.append(self.tokens[j][1])
            j += 1
        spelled = " ".join(words)
        if words and self.tokens[j][1] == ")" and spelled in CAST_TYPES:
            self.i = j + 1
            return spelled
        return None

    def designator(self) -> str:
        """A member designator: names joined by '.'."""
        kind, text, pos = self.take()
        if kind != "name":
            found = repr(text) if kind != "end" else "the end"
            raise ExprError(f"expected a member name, found {found}", pos)
        return text + self.designator_rest()

    def designator_rest(self) -> str:
        parts = []
        while self.peek()[1] == ".":
            self.take()
            kind, text, pos = self.take()
            if kind != "name":
                raise ExprError("expected a member name after '.'", pos)
            parts.append(text)
        return "".join("." + p for p in parts)

    def unary(self) -> Node:
        kind, text, pos = self.peek()
        if text in ("-", "+", "~", "!"):
            self.take()
            return Unary(text, self.unary(), pos)
        if text == "(":
            cast = self._cast_type()
            if cast is not None:
                return Cast(cast, self.unary(), pos)
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        """Member access and subscripts, as in a designator of offsetof (regs.regs[0])."""
        while True:
            kind, text, pos = self.peek()
            if text == ".":
                self.take()
                kind, name, npos = self.take()
                if kind != "name":
                    raise ExprError("expected a member name after '.'", npos)
                node = Member(node, name, pos)
            elif text == "[":
                self.take()
                index = self.conditional()
                self.expect("]")
                node = Index(node, index, pos)
            else:
                return node

    def primary(self) -> Node:
        kind, text, pos = self.take()
        if kind == "num":
            digits = text.rstrip("uUlL")
            suffix = text[len(digits):].lower()
            if suffix not in ("", "u", "l", "ul", "lu", "ll", "ull", "llu"):
                raise ExprError(f"invalid integer suffix in {text!r}", pos)
            if digits[:2].lower() == "0x":
                value = int(digits, 16)
            elif len(digits) > 1 and digits[0] == "0":
                if any(c in "89" for c in digits):
                    raise ExprError(f"{text!r} is not a valid octal number", pos)
                value = int(digits, 8)
            else:
                value = int(digits)
            return Num(value, suffix, text, pos)
        if kind == "name" and text == "sizeof":
            self.expect("(")
            words = []
            while self.peek()[0] == "name" or self.peek()[1] == "*":
                words.append(self.take()[1])
            self.expect(")")
            if not words:
                raise ExprError("sizeof needs a type, e.g. sizeof(struct kvm_run)", pos)
            return Sizeof(" ".join(words).replace(" *", " *"), pos)
        if kind == "name" and text == "offsetof":
            self.expect("(")
            words = []
            while self.peek()[0] == "name":
                words.append(self.take()[1])
            if len(words) != 2 or words[0] not in ("struct", "union"):
                raise ExprError("offsetof needs a struct or union, e.g. offsetof(struct kvm_regs, regs.pc)", pos)
            self.expect(",")
            designator = self.conditional()
            self.expect(")")
            return Offsetof(" ".join(words), designator, pos)
        if kind == "name" and self.peek()[1] == "##":
            parts = [text]
            while self.peek()[1] == "##":
                self.take()
                k, t, p = self.take()
                if k != "name" and k != "num":
                    raise ExprError("'##' must join names", p)
                parts.append(t)
            return Paste(tuple(parts), pos)
        if kind == "name":
            if self.peek()[1] == "(":
                self.take()
                args = []
                if self.peek()[1] != ")":
                    args.append(self.conditional())
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.conditional())
                self.expect(")")
                return Call(text, tuple(args), pos)
            return Name(text, pos)
        if text == "(":
            node = self.conditional()
            self.expect(")")
            return node
        found = repr(text) if kind != "end" else "the end of the expression"
        raise ExprError(f"expected a number, a name or '(', found {found}", pos)


# The most common expressions: a number without suffix (no octal) or a name.
_PLAIN_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f]+|[1-9][0-9]*|0)\Z")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse(text: str) -> Node:
    """Parse a C integer constant expression, or raise ExprError."""
    if _PLAIN_NUMBER.match(text):   # what the parser would make of it, without tokenizing
        return Num(int(text, 0), "", text, 0)
    if _PLAIN_NAME.match(text) and text not in ("sizeof", "offsetof"):
        return Name(text, 0)
    if len(text) > 4096:
        raise ExprError("expression is longer than 4096 characters")
    try:
        node = _Parser(text).parse()
    except RecursionError:
        raise ExprError("expression is nested too deeply") from None
    # Each level of the tree has a token of its own, at least a character: a text
    # no longer than MAX_DEPTH cannot be deeper.
    if len(text) > MAX_DEPTH and _depth(node) > MAX_DEPTH:
        # 1+1+...+1 parses flat but is a tree that deep: evaluating it would recurse as deep.
        raise ExprError(f"expression is nested more than {MAX_DEPTH} levels deep", 0,
                        "split it into named constants")
    return node


MAX_DEPTH = 100
# Operations one evaluation may take, macro expansions included.
MAX_STEPS = 100_000


def _children(n: Node) -> tuple:
    if isinstance(n, (Unary, Cast)):
        return (n.operand,)
    if isinstance(n, Member):
        return (n.base,)
    if isinstance(n, Index):
        return (n.base, n.index)
    if isinstance(n, Offsetof):
        return (n.designator,)
    if isinstance(n, Binary):
        return (n.left, n.right)
    if isinstance(n, Cond):
        return (n.test, n.then, n.orelse)
    if isinstance(n, Call):
        return tuple(n.args)
    return ()


def _depth(node: Node) -> int:
    """The depth of a parsed expression, without recursion."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in _children(n))
    return deepest


class Unavailable(ExprError):
    """A name whose value could not be had; its own error was reported already."""


def pasted_params(macro: "FunctionMacro") -> set[str]:
    """Parameters of a macro that are pasted into names (`## n ##`) rather than evaluated."""
    found: set[str] = set()
    stack = [macro.body]
    while stack:
        n = stack.pop()
        if isinstance(n, Paste):
            found.update(p for p in n.parts if p in macro.params)
        stack.extend(_children(n))
    return found


def names(node: Node, macros: "Mapping[str, FunctionMacro] | None" = None) -> list[Name]:
    """Every name the expression refers to (macro calls included), in order.

    With `macros`, an argument that a called macro pastes into a name (OP0 in
    ARM64_SYS_REG_SHIFT_MASK(x, OP0)) is spelling, not a reference, and is left out.
    """
    found: list[Name] = []

    def visit(n: Node) -> None:
        if isinstance(n, Name):
            found.append(n)
        elif isinstance(n, Unary):
            visit(n.operand)
        elif isinstance(n, Binary):
            visit(n.left)
            visit(n.right)
        elif isinstance(n, Cond):
            visit(n.test)
            visit(n.then)
            visit(n.orelse)
        elif isinstance(n, Cast):
            visit(n.operand)
        elif isinstance(n, (Sizeof, Offsetof)):
            pass
        elif isinstance(n, (Member, Index, Offsetof)):
            # A designator names members, not constants; only its subscripts are expressions
            # (and a macro parameter standing for the whole designator).
            designator = n.designator if isinstance(n, Offsetof) else n
            while isinstance(designator, (Member, Index)):
                if isinstance(designator, Index):
                    visit(designator.index)
                designator = designator.base
            if isinstance(n, Offsetof) and isinstance(designator, Name):
                found.append(designator)
        elif isinstance(n, Call):
            found.append(Name(n.name, n.pos))
            callee = macros.get(n.name) if macros else None
            pasted = pasted_params(callee) if callee is not None else set()
            for param, a in zip(callee.params if callee is not None else (), n.args):
                if param in pasted and isinstance(a, Name):
                    continue
                visit(a)
            for a in n.args[len(callee.params) if callee is not None else 0:]:
                visit(a)

    visit(node)
    return found


# ---------------------------------------------------------------- evaluation


@value_type
class FunctionMacro:
    params: tuple[str, ...]
    body: Node


# Function-like macros of linux/const.h that uapi headers may use.
BUILTIN_MACROS: dict[str, FunctionMacro] = {
    "_AC": FunctionMacro(("X", "Y"), Name("X", 0)),  # suffix pasting is not modelled
    "_UL": FunctionMacro(("x",), Cast("unsigned long", Name("x", 0), 0)),
    "_ULL": FunctionMacro(("x",), Cast("unsigned long long", Name("x", 0), 0)),
    "_BITUL": FunctionMacro(("x",), Binary("<<", Num(1, "ul", "1UL", 0), Name("x", 0), 0)),
    "_BITULL": FunctionMacro(("x",), Binary("<<", Num(1, "ull", "1ULL", 0), Name("x", 0), 0)),
}
# linux/bits.h (uapi since 6.9): bits h..l set.
BUILTIN_MACROS["__GENMASK_ULL"] = FunctionMacro(("h", "l"), parse(
    "(((~0ULL) - (1ULL << (l)) + 1) & (~0ULL >> (64 - 1 - (h))))"))


class Evaluator:
    """Evaluates expressions for one ABI.

    `lookup(name)` returns the Value of another constant (or None if there is
    no such name); `macros` maps names of function-like macros to their
    definitions; `sizeof(type)` and `offsetof(type, member)` give a record's
    size and a member's byte offset (None if unknown).
    """

    def __init__(self, long_bits: int, lookup: Callable[[str], Value | None],
                 macros: Mapping[str, FunctionMacro] | None = None,
                 sizeof: Callable[[str], int | None] | None = None,
                 offsetof: Callable[[str, tuple[str | int, ...]], int | str] | None = None,
                 unknown_call: Callable[[str], None] | None = None,
                 suggest: Callable[[str], str] | None = None) -> None:
        self.types = int_types(long_bits)
        self.lookup = lookup
        self.suggest = suggest   # a hint for an unknown name ("did you mean ...?"), or ''

        self.macros = dict(BUILTIN_MACROS, **(macros or {}))
        self.sizeof = sizeof
        self.offsetof = offsetof
        self.unknown_call = unknown_call   # may raise for a macro known to be defined elsewhere
        self.budget = MAX_STEPS   # operations left; whoever starts an evaluation may refill it

    # C's rules -------------------------------------------------------
    def literal_type(self, n: Num) -> IntType:
        t = self.types
        decimal = not (n.text.lower().startswith("0x") or (len(n.text) > 1 and n.text[0] == "0"))
        suffix = n.suffix.replace("lu", "ul").replace("llu", "ull")
        if suffix == "":
            order = ["int", "long", "long long"] if decimal else \
                ["int", "unsigned int", "long", "unsigned long", "long long", "unsigned long long"]
        elif suffix == "u":
            order = ["unsigned int", "unsigned long", "unsigned long long"]
        elif suffix == "l":
            order = ["long", "long long"] if decimal else ["long", "unsigned long", "long long", "unsigned long long"]
        elif suffix == "ul":
            order = ["unsigned long", "unsigned long long"]
        elif suffix == "ll":
            order = ["long long"] if decimal else ["long long", "unsigned long long"]
        else:
            order = ["unsigned long long"]
        for name in order:
            if t[name].holds(n.value):
                return t[name]
        raise ExprError(f"{n.text} does not fit in any C integer type", n.pos)

    def promote(self, ty: IntType) -> IntType:
        return self.types["int"] if ty.rank < 3 else ty

    def common(self, a: IntType, b: IntType) -> IntType:
        a, b = self.promote(a), self.promote(b)
        if a.signed == b.signed:
            return a if a.rank >= b.rank else b
        unsigned, signed = (a, b) if not a.signed else (b, a)
        if unsigned.rank >= signed.rank:
            return unsigned
        if signed.bits > unsigned.bits:
            return signed
        return next(t for t in self.types.values() if t.rank == signed.rank and not t.signed)

    # evaluation ------------------------------------------------------
    def evaluate(self, node: Node, env: Mapping[str, Node] | None = None, depth: int = 0) -> Value:
        if depth > 100:
            raise ExprError("macro expansion nested too deeply", getattr(node, "pos", 0))
        self.budget -= 1
        if self.budget < 0:
            # Macros that use a parameter twice, nested, double the work at each level.
            raise ExprError(f"expression expands to more than {MAX_STEPS} operations", getattr(node, "pos", 0),
                            "the C preprocessor would expand it as far; simplify the macros it uses")
        env = env or {}
        t = self.types
        if isinstance(node, Num):
            return Value(node.value, self.literal_type(node))
        if isinstance(node, Name):
            if node.name in env:
                return self.evaluate(env[node.name], None, depth + 1)
            found = self.lookup(node.name)
            if found is None:
                hint = self.suggest(node.name) if self.suggest is not None else ""
                raise ExprError(f"unknown name {node.name!r}", node.pos,
                                f"{hint} (or define it earlier in the spec)" if hint
                                else "define it earlier in the spec, or check the spelling")
            return found
        if isinstance(node, Sizeof):
            size = self.sizeof(node.type_name) if self.sizeof is not None else None
            if size is None and node.type_name in CAST_TYPES:   # long follows the ABI
                size = self.types[CAST_TYPES[node.type_name]].bits // 8
            if size is None:
                raise ExprError(f"unknown type {node.type_name!r} in sizeof", node.pos,
                                "use a scalar type or a struct/union of the spec")
            return Value(size, self.types["unsigned long"])
        if isinstance(node, Offsetof):
            path = self.designator(node.designator, env, depth)
            found = self.offsetof(node.type_name, path) if self.offsetof is not None else None
            if found is None:
                raise ExprError(f"unknown type {node.type_name!r} in offsetof", node.pos,
                                "use a struct or union of the spec")
            if isinstance(found, str):
                raise ExprError(found, node.pos)
            return Value(found, self.types["unsigned long"])
        if isinstance(node, (Member, Index)):
            raise ExprError("'.' and '[]' only name members inside offsetof(...)", node.pos)
        if isinstance(node, Paste):
            return self.evaluate(Name(self.pasted(node, env, depth), node.pos), None, depth + 1)
        if isinstance(node, Cast):
            inner = self.evaluate(node.operand, env, depth)
            ty = t[CAST_TYPES[node.type_name]]
            return Value(ty.wrap(inner.value), ty)
        if isinstance(node, Unary):
            v = self.evaluate(node.operand, env, depth)
            if node.op == "!":
                return Value(int(v.value == 0), t["int"])
            ty = self.promote(v.type)
            if node.op == "-":
                if ty.signed and not ty.holds(-v.value):
                    raise ExprError(f"-({v.value}) overflows {ty.name}", node.pos)
                return Value(ty.wrap(-v.value), ty)
            if node.op == "~":
                return Value(ty.wrap(~v.value), ty)
            return Value(ty.wrap(v.value), ty)
        if isinstance(node, Cond):
            test = self.evaluate(node.test, env, depth)
            a = self.evaluate(node.then, env, depth)
            b = self.evaluate(node.orelse, env, depth)
            ty = self.common(a.type, b.type)
            chosen = a if test.value else b
            return Value(ty.wrap(chosen.value), ty)
        if isinstance(node, Call):
            macro = self.macros.get(node.name)
            if macro is None and self.unknown_call is not None:
                self.unknown_call(node.name)
            if macro is None:
                raise ExprError(f"unknown function-like macro {node.name!r}", node.pos,
                                "define it with a macro: item before using it")
            if len(macro.params) != len(node.args):
                raise ExprError(f"{node.name} takes {len(macro.params)} argument(s), "
                                f"{len(node.args)} given", node.pos)
            bound = {p: _Closure(a, env) for p, a in zip(macro.params, node.args)}
            return self._evaluate_closure(macro.body, bound, depth + 1)
        if isinstance(node, _Closure):
            return self.evaluate(node.node, node.env, depth + 1)
        assert isinstance(node, Binary)
        op = node.op
        if op in ("&&", "||"):
            left = self.evaluate(node.left, env, depth)
            if op == "&&" and not left.value:
                return Value(0, t["int"])
            if op == "||" and left.value:
                return Value(1, t["int"])
            right = self.evaluate(node.right, env, depth)
            return Value(int(bool(right.value)), t["int"])
        left = self.evaluate(node.left, env, depth)
        right = self.evaluate(node.right, env, depth)
        if op in ("<<", ">>"):
            ty = self.promote(left.type)
            if right.value < 0 or right.value >= ty.bits:
                raise ExprError(f"shift by {right.value} is undefined for {ty.name} "
                                f"({ty.bits} bits)", node.pos, "use a wider type, e.g. 1ULL << n")
            if op == "<<":
                shifted = ty.wrap(left.value) << right.value
                # As GCC sees it: shifting into the sign bit is accepted (the kernel's
                # headers do it), shifting bits out of the type is not.
                if ty.signed and not 0 <= shifted < (1 << ty.bits) and not ty.holds(shifted):
                    raise ExprError(f"{left.value} << {right.value} overflows {ty.name} ({ty.bits} bits)",
                                    node.pos, "use a wider or unsigned type, e.g. 1ULL << n")
                return Value(ty.wrap(shifted), ty)
            return Value(ty.wrap(left.value >> right.value), ty)
        ty = self.common(left.type, right.type)
        a, b = ty.wrap(left.value), ty.wrap(right.value)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            result = {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
            return Value(int(result), t["int"])
        if op in ("/", "%"):
            if b == 0:
                raise ExprError("division by zero", node.pos)
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            if ty.signed and not ty.holds(q):
                raise ExprError(f"{a} {op} {b} overflows {ty.name}", node.pos)
            return Value(ty.wrap(q if op == "/" else a - q * b), ty)
        result = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op]
        if ty.signed and not ty.holds(result):
            # Signed overflow is undefined in C; GCC warns and may compute anything.
            raise ExprError(f"{a} {op} {b} overflows {ty.name} ({ty.bits} bits)", node.pos,
                            "use an unsigned or wider type, e.g. 1ULL or a cast to (__u64)")
        return Value(ty.wrap(result), ty)

    def designator(self, node: Node, env: Mapping[str, Node], depth: int) -> tuple[str | int, ...]:
        """The members and subscripts a designator of offsetof names, outermost first."""
        if depth > 100:
            raise ExprError("macro expansion nested too deeply", getattr(node, "pos", 0))
        if isinstance(node, _Closure):
            return self.designator(node.node, node.env, depth + 1)
        if isinstance(node, Name):
            if node.name in env:
                return self.designator(env[node.name], {}, depth + 1)
            return (node.name,)
        if isinstance(node, Member):
            return self.designator(node.base, env, depth) + (node.member,)
        if isinstance(node, Index):
            return self.designator(node.base, env, depth) + (self.evaluate(node.index, env, depth).value,)
        raise ExprError("offsetof needs a member, e.g. regs.pc or fp_regs.vregs[0]",
                        getattr(node, "pos", 0))

    def pasted(self, node: Paste, env: Mapping[str, Node], depth: int) -> str:
        """The name `A ## n ## B` makes: a parameter contributes the spelling of its argument."""
        text = ""
        for part in node.parts:
            arg = env.get(part)
            while isinstance(arg, _Closure):
                inner = arg.node
                arg = arg.env.get(inner.name) if isinstance(inner, Name) and inner.name in arg.env else inner
            if arg is None:
                text += part
            elif isinstance(arg, Name):
                text += arg.name
            elif isinstance(arg, Num):
                text += arg.text
            else:
                raise ExprError(f"'##' needs a name as argument for {part!r}", node.pos)
        return text

    def _evaluate_closure(self, body: Node, bound: Mapping[str, "_Closure"], depth: int) -> Value:
        return self.evaluate(body, bound, depth)  # type: ignore[arg-type]


@value_type
class _Closure:
    """A macro argument together with the environment it was written in."""

    node: Node
    env: Mapping[str, Node]
    pos: int = 0


# ---------------------------------------------------------------- other languages

_PY_BINARY = {"&&": "and", "||": "or"}
# The ctypes type of each C integer type, for sizeof() in Python.
_CTYPES = {
    "char": "ctypes.c_char", "signed char": "ctypes.c_byte", "unsigned char": "ctypes.c_ubyte",
    "short": "ctypes.c_short", "unsigned short": "ctypes.c_ushort", "int": "ctypes.c_int",
    "unsigned int": "ctypes.c_uint", "long": "ctypes.c_long", "unsigned long": "ctypes.c_ulong",
    "long long": "ctypes.c_longlong", "unsigned long long": "ctypes.c_ulonglong",
}


def to_python(node: Node, params: tuple[str, ...] = ()) -> str:
    """Python source computing the expression with C's unsigned wrap-around.

    Casts become masks (`_cast(x, bits, signed)` from the bindings' support
    module), `/` truncates toward zero (`_cdiv`), `!` and comparisons give 0/1.
    """
    def py(n: Node) -> str:
        if isinstance(n, Num):
            return str(n.value)
        if isinstance(n, Name):
            return n.name if "." not in n.name else repr(n.name)
        if isinstance(n, Unary):
            if n.op == "!":
                return f"int(not {py(n.operand)})"
            return f"({n.op}{py(n.operand)})"
        if isinstance(n, Cast):
            ctype = int_types(64)[CAST_TYPES[n.type_name]]
            return f"_cast({py(n.operand)}, {ctype.bits}, {ctype.signed})"
        if isinstance(n, Cond):
            return f"({py(n.then)} if {py(n.test)} else {py(n.orelse)})"
        if isinstance(n, Call):
            return f"{n.name}({', '.join(py(a) for a in n.args)})"
        if isinstance(n, Sizeof):
            kind, _, name = n.type_name.partition(" ")
            if kind in ("struct", "union"):
                return f"ctypes.sizeof({name})"
            return f"ctypes.sizeof({_CTYPES.get(CAST_TYPES.get(n.type_name, ''), n.type_name)})"
        if isinstance(n, Offsetof):
            # The designator goes to Python as text ("regs.pc"); a macro parameter stands for it.
            d = n.designator
            text = d.name if isinstance(d, Name) and d.name in params else repr(designator_text(d))
            return f"_offsetof({n.type_name.partition(' ')[2]}, {text})"
        if isinstance(n, (Member, Index)):
            return repr(designator_text(n))
        if isinstance(n, Paste):
            # Python has no token pasting: a parameter there is the name's text, e.g. "OP0".
            pieces = " + ".join(p if p in params else repr(p) for p in n.parts)
            return f"globals()[{pieces}]"
        assert isinstance(n, Binary)
        if n.op in ("/", "%"):
            return f"_cdiv({py(n.left)}, {py(n.right)}, {n.op == '%'})"
        if n.op in ("==", "!=", "<", ">", "<=", ">="):
            return f"int({py(n.left)} {n.op} {py(n.right)})"
        if n.op in _PY_BINARY:
            return f"int(bool({py(n.left)}) {_PY_BINARY[n.op]} bool({py(n.right)}))"
        return f"({py(n.left)} {n.op} {py(n.right)})"

    return py(node)


def designator_text(node: Node) -> str:
    """A designator of offsetof written out as C (regs.regs[0])."""
    if isinstance(node, Member):
        return f"{designator_text(node.base)}.{node.member}"
    if isinstance(node, Index):
        inner = node.index
        return f"{designator_text(node.base)}[{inner.text if isinstance(inner, Num) else to_python(inner)}]"
    if isinstance(node, Name):
        return node.name
    raise ExprError("offsetof needs a member, e.g. regs.pc", getattr(node, "pos", 0))
