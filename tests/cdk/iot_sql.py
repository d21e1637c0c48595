"""A small, strict reader of the AWS IoT SQL the stack's rules use, to check them without AWS IoT.

It parses ``SELECT ... FROM '<topic filter>' [WHERE ...]`` with the grammar the documentation gives for what we
use (paths with ``.``, string, number and boolean literals, ``=``, ``AND``/``OR``/``NOT``, the functions ``get``,
``isUndefined``, ``topic``, ``clientid``, ``timestamp``), refuses anything else (a keyword used as a field
name, such as ``run.rollback.from``, an unknown function, stray tokens), evaluates a rule against a payload
and topic, and fills substitution templates (``${expr}``) from the ORIGINAL payload, as AWS IoT does. It is
a test instrument, not IoT Core: what it accepts is a subset of what IoT accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KEYWORDS = {"select", "from", "where", "as", "and", "or", "not", "case", "when", "then", "else", "end", "set",
            "true", "false", "null"}
FUNCTIONS = {"get", "isundefined", "topic", "clientid", "timestamp"}
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op><>|[=(),.*]))")


class Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED = Undefined()


class IotSqlError(ValueError):
    pass


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise IotSqlError(f"cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value.lower() in KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value))
        pos = m.end()
    return out


@dataclass
class Node:
    kind: str  # str, num, path, call, eq, ne, and, or, not, star
    args: tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.t = tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise IotSqlError(f"expected {value or kind} at token {self.i} ({tok})")
        self.i += 1
        return tok[1]

    def at(self, kind: str, value: str | None = None) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == kind and (value is None or tok[1] == value)

    def expr(self) -> Node:
        node = self.conj()
        while self.at("kw", "or"):
            self.take("kw")
            node = Node("or", (node, self.conj()))
        return node

    def conj(self) -> Node:
        node = self.neg()
        while self.at("kw", "and"):
            self.take("kw")
            node = Node("and", (node, self.neg()))
        return node

    def neg(self) -> Node:
        if self.at("kw", "not"):
            self.take("kw")
            return Node("not", (self.neg(),))
        left = self.operand()
        if self.at("op", "=") or self.at("op", "<>"):
            op = self.take("op")
            return Node("eq" if op == "=" else "ne", (left, self.operand()))
        return left

    def operand(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise IotSqlError("expression ends early")
        if tok[0] == "str":
            self.i += 1
            return Node("str", (tok[1][1:-1].replace("''", "'"),))
        if tok[0] == "num":
            self.i += 1
            return Node("num", (float(tok[1]),))
        if tok[0] == "kw" and tok[1] in ("true", "false"):
            self.i += 1
            return Node("bool", (tok[1] == "true",))
        if tok[0] == "op" and tok[1] == "(":
            self.take("op", "(")
            node = self.expr()
            self.take("op", ")")
            return node
        name = self.take("name")  # a keyword here (e.g. ``from``) is refused
        if self.at("op", "("):
            if name.lower() not in FUNCTIONS:
                raise IotSqlError(f"unknown function {name}")
            self.take("op", "(")
            args: list[Node] = []
            while not self.at("op", ")"):
                args.append(self.expr())
                if not self.at("op", ")"):
                    self.take("op", ",")
            self.take("op", ")")
            return Node("call", (name.lower(), tuple(args)))
        parts = [name]
        while self.at("op", "."):
            self.take("op", ".")
            parts.append(self.take("name"))
        return Node("path", tuple(parts))


@dataclass
class Rule:
    select: list[tuple[Node, str | None]]
    topic_filter: str
    where: Node | None

    def matches(self, topic: str, payload: dict[str, Any], client_id: str = "") -> bool:
        if not topic_matches(self.topic_filter, topic):
            return False
        return self.where is None or evaluate(self.where, payload, topic, client_id) is True

    def paths(self) -> list[tuple[str, ...]]:
        """Every payload path the rule reads (``get(p, 'k')`` counts as ``p.k``)."""
        found: list[tuple[str, ...]] = []
        for node, _ in self.select:
            found += node_paths(node)
        return found + (node_paths(self.where) if self.where else [])


def parse_rule(sql: str) -> Rule:
    p = _Parser(sql)
    p.take("kw", "select")
    select: list[tuple[Node, str | None]] = []
    while True:
        if p.at("op", "*"):
            p.take("op", "*")
            select.append((Node("star", ()), None))
        else:
            node = p.expr()
            alias = None
            if p.at("kw", "as"):
                p.take("kw", "as")
                alias = p.take("name")
            select.append((node, alias))
        if not p.at("op", ","):
            break
        p.take("op", ",")
    p.take("kw", "from")
    topic = p.take("str")[1:-1]
    where = None
    if p.at("kw", "where"):
        p.take("kw", "where")
        where = p.expr()
    if p.peek() is not None:
        raise IotSqlError(f"unexpected {p.peek()} after the statement")
    return Rule(select, topic, where)


def parse_expression(text: str) -> Node:
    p = _Parser(text)
    node = p.expr()
    if p.peek() is not None:
        raise IotSqlError(f"unexpected {p.peek()} in {text!r}")
    return node


def node_paths(node: Node) -> list[tuple[str, ...]]:
    if node.kind == "path":
        return [node.args]
    if node.kind == "call" and node.args[0] == "get" and len(node.args[1]) == 2 \
            and node.args[1][0].kind == "path" and node.args[1][1].kind == "str":
        return [(*node.args[1][0].args, node.args[1][1].args[0])]
    if node.kind == "call":
        return [p for a in node.args[1] for p in node_paths(a)]
    return [p for a in node.args if isinstance(a, Node) for p in node_paths(a)]


def evaluate(node: Node, payload: dict[str, Any], topic: str = "", client_id: str = "") -> Any:
    def ev(n: Node) -> Any:
        return evaluate(n, payload, topic, client_id)

    if node.kind in ("str", "num", "bool"):
        return node.args[0]
    if node.kind == "path":
        value: Any = payload
        for part in node.args:
            value = value.get(part, UNDEFINED) if isinstance(value, dict) else UNDEFINED
        return value
    if node.kind == "eq":
        a, b = ev(node.args[0]), ev(node.args[1])
        return UNDEFINED if UNDEFINED in (a, b) else a == b
    if node.kind == "ne":
        a, b = ev(node.args[0]), ev(node.args[1])
        return UNDEFINED if UNDEFINED in (a, b) else a != b
    if node.kind == "and":
        return ev(node.args[0]) is True and ev(node.args[1]) is True
    if node.kind == "or":
        return ev(node.args[0]) is True or ev(node.args[1]) is True
    if node.kind == "not":
        inner = ev(node.args[0])
        return UNDEFINED if inner is UNDEFINED else not inner
    if node.kind == "call":
        name, args = node.args
        values = [ev(a) for a in args]
        if name == "isundefined":
            return values[0] is UNDEFINED
        if name == "get":
            obj, key = values
            return obj.get(key, UNDEFINED) if isinstance(obj, dict) else UNDEFINED
        if name == "topic":
            levels = topic.split("/")
            return levels[int(values[0]) - 1] if values else topic
        if name == "clientid":
            return client_id
        if name == "timestamp":
            return 0
    raise IotSqlError(f"cannot evaluate {node}")


_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


def substitute(template: str, payload: dict[str, Any], topic: str = "", client_id: str = "") -> str:
    """A substitution template, its expressions evaluated against the original payload."""
    def one(m: re.Match[str]) -> str:
        value = evaluate(parse_expression(m.group(1)), payload, topic, client_id)
        if value is UNDEFINED:
            raise IotSqlError(f"${{{m.group(1)}}} is undefined for this payload")
        return str(value)

    return _TEMPLATE.sub(one, template)


def topic_matches(topic_filter: str, topic: str) -> bool:
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def schema_resolves(schema: dict[str, Any], definition: str, path: tuple[str, ...]) -> bool:
    """Whether ``path`` names a property of ``definition`` in a JSON Schema with ``$defs`` (through ``$ref``
    and ``anyOf``)."""
    node: dict[str, Any] = schema["$defs"][definition]
    for part in path:
        node = _deref(schema, node)
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = props[part]
    return True


def _deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:
            node = next(n for n in node["anyOf"] if n.get("type") != "null")
        else:
            return node
