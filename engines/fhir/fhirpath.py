"""The common FHIRPath subset of SDC questionnaires, to JsonLogic and back.

Read (:func:`to_jsonlogic`): numbers, strings, ``true``/``false``, parentheses, ``+ - * /``,
``= != < <= > >=``, ``and``/``or``, ``.not()``, and answers named by linkId:
``%resource.item.where(linkId='q1').answer.value`` (``repeat(item)`` instead of ``item`` and
nested ``.item.where(...)`` steps too), followed by nothing (the answer; a coded answer's
``.code`` is the same), ``.ordinal()`` / ``.weight()`` / ``.extension('…ordinalValue').value``
(the chosen option's score), ``.exists()``, ``.sum()``; and
``%resource.repeat(item).answer.value.weight().sum()`` (the sum of every scored answer).
Anything else raises :class:`Unsupported` with the reason, so the caller can list it.

Write (:func:`to_fhirpath`): the inverse for the JsonLogic this module makes and for simple
hand-written rules (``var``, literals, arithmetic, comparisons, and/or/!); ``None`` when a rule
has no FHIRPath counterpart here.

Invariant: a score of an unanswered question is ``null``, which sums as 0 (JsonLogic ``+``),
as FHIRPath's ``sum()`` skips empty answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCORE_EXTENSIONS = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/ordinalValue",
        "http://hl7.org/fhir/StructureDefinition/itemWeight",
        "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value",
    }
)


class Unsupported(ValueError):
    """The expression is outside the subset; the message says what."""


@dataclass(frozen=True)
class Answerable:
    """What an expression may read of one item: its field key and option scores."""

    key: str
    link_id: str
    scores: tuple[tuple[str, float], ...] = ()
    coded: bool = False


@dataclass
class _Tokens:
    items: list[str]
    position: int = 0
    text: str = field(default="")

    def peek(self) -> str | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise Unsupported(f"{self.text!r} ends early")
        if expected is not None and token != expected:
            raise Unsupported(f"expected {expected!r} but found {token!r} in {self.text!r}")
        self.position += 1
        return token


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>'(?:[^'\\]|\\.)*')|"
    r"(?P<name>%?[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|[-+*/=<>().,]))"
)

_COMPARISONS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {stripped[position:]!r}")
        tokens.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return tokens


def score_rule(item: Answerable) -> Any:
    """JsonLogic giving the score of the option chosen for ``item`` (``null`` if none)."""
    chain: list[Any] = []
    for value, score in item.scores:
        chain.extend([{"==": [{"var": item.key}, value]}, _number(score)])
    chain.append(None)
    return {"if": chain}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def to_jsonlogic(text: str, items: Mapping[str, Answerable]) -> Any:
    """The JsonLogic rule for a FHIRPath expression of the subset (``items`` by linkId)."""
    tokens = _Tokens(_tokenize(text), text=text)
    rule = _Parser(tokens, items).expression()
    if tokens.peek() is not None:
        raise Unsupported(f"unexpected {tokens.peek()!r} in {text!r}")
    return rule


class _Parser:
    def __init__(self, tokens: _Tokens, items: Mapping[str, Answerable]) -> None:
        self.tokens = tokens
        self.items = items

    def expression(self) -> Any:
        return self._binary(("or",), self._and)

    def _and(self) -> Any:
        return self._binary(("and",), self._comparison)

    def _binary(self, names: tuple[str, ...], operand: Callable[[], Any]) -> Any:
        parts = [operand()]
        operator: str | None = None
        while self.tokens.peek() in names:
            operator = self.tokens.take()
            parts.append(operand())
        return parts[0] if operator is None else {operator: parts}

    def _comparison(self) -> Any:
        left = self._additive()
        token = self.tokens.peek()
        if token in _COMPARISONS:
            self.tokens.take()
            right = self._additive()
            if _COMPARISONS[token] in ("<", "<=", ">", ">=") and _is_answer(left):
                return {"and": [{"!=": [left, None]}, {_COMPARISONS[token]: [left, right]}]}
            return {_COMPARISONS[token]: [left, right]}
        return left

    def _additive(self) -> Any:
        left = self._multiplicative()
        while self.tokens.peek() in ("+", "-"):
            operator = self.tokens.take()
            right = self._multiplicative()
            if operator == "+" and isinstance(left, dict) and list(left) == ["+"]:
                left = {"+": [*left["+"], right]}
            else:
                left = {operator: [left, right]}
        return left

    def _multiplicative(self) -> Any:
        left = self._postfix()
        while self.tokens.peek() in ("*", "/"):
            operator = self.tokens.take()
            left = {operator: [left, self._postfix()]}
        return left

    def _postfix(self) -> Any:
        rule = self._primary()
        while self.tokens.peek() == ".":
            self.tokens.take(".")
            name = self.tokens.take()
            self._call_parens()
            if name == "not":
                rule = {"!": rule}
            elif name == "exists":
                rule = {"!=": [rule, None]}
            else:
                raise Unsupported(f".{name}() is not supported here")
        return rule

    def _call_parens(self) -> None:
        self.tokens.take("(")
        self.tokens.take(")")

    def _primary(self) -> Any:
        token = self.tokens.take()
        if token == "(":
            rule = self.expression()
            self.tokens.take(")")
            return rule
        if token[0].isdigit():
            number = float(token)
            return _number(number)
        if token.startswith("'"):
            return json.loads('"' + token[1:-1].replace('"', '\\"').replace("\\'", "'") + '"')
        if token in ("true", "false"):
            return token == "true"
        if token in ("%resource", "%context", "%questionnaireResponse"):
            return self._answer_path()
        if token == "iif":
            self.tokens.take("(")
            condition = self.expression()
            self.tokens.take(",")
            then = self.expression()
            otherwise: Any = None
            if self.tokens.peek() == ",":
                self.tokens.take(",")
                otherwise = self.expression()
            self.tokens.take(")")
            return {"if": [condition, then, otherwise]}
        raise Unsupported(
            f"{token!r} is not supported (only answers by linkId, literals and arithmetic)"
        )

    def _answer_path(self) -> Any:
        target: str | None = None
        seen_answer = False
        score = False
        total = False
        exists = False
        while self.tokens.peek() == ".":
            self.tokens.take(".")
            name = self.tokens.take()
            if name == "item" and self.tokens.peek() != "(":
                continue
            if name == "repeat":
                self.tokens.take("(")
                self.tokens.take("item")
                self.tokens.take(")")
                continue
            if name == "where":
                self.tokens.take("(")
                self.tokens.take("linkId")
                self.tokens.take("=")
                literal = self.tokens.take()
                if not literal.startswith("'"):
                    raise Unsupported("where() must compare linkId with a string")
                target = literal[1:-1]
                self.tokens.take(")")
                continue
            if name == "answer":
                seen_answer = True
                continue
            if name in ("value", "code") and seen_answer:
                continue
            if name in ("ordinal", "weight"):
                self._call_parens()
                score = True
                continue
            if name == "extension":
                self.tokens.take("(")
                url = self.tokens.take()
                self.tokens.take(")")
                if url[1:-1] not in SCORE_EXTENSIONS:
                    raise Unsupported(f"extension {url} is not a score")
                self.tokens.take(".")
                self.tokens.take("value")
                score = True
                continue
            if name == "sum":
                self._call_parens()
                total = True
                continue
            if name == "exists":
                self._call_parens()
                exists = True
                break
            # anything else (.not(), ...) applies to the answer: leave it to _postfix
            self.tokens.position -= 2
            break
        if not seen_answer:
            raise Unsupported("an expression must read answers (….answer.value)")
        if target is None:
            if not (score and total):
                raise Unsupported("answers must be named with .where(linkId='…')")
            scored = [item for item in self.items.values() if item.scores]
            return {"+": [score_rule(item) for item in scored]}
        item = self.items.get(target)
        if item is None:
            raise Unsupported(f"no item has linkId {target!r}")
        rule: Any = score_rule(item) if score else {"var": item.key}
        if score and not item.scores:
            raise Unsupported(f"item {target!r} has no scored options")
        if exists:
            return {"!=": [rule, None]}
        return rule


def _is_answer(rule: Any) -> bool:
    return isinstance(rule, dict) and ("var" in rule or "if" in rule)


def to_fhirpath(rule: Any, items: Mapping[str, Answerable]) -> str | None:
    """FHIRPath for a JsonLogic rule (``items`` by field key), or ``None`` if there is none."""
    try:
        return _write(rule, items)
    except Unsupported:
        return None


def _answer(item: Answerable) -> str:
    path = f"%resource.repeat(item).where(linkId={_string(item.link_id)}).answer.value"
    return path + (".code" if item.coded else "")


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write(rule: Any, items: Mapping[str, Answerable]) -> str:
    if rule is None:
        raise Unsupported("null")
    if isinstance(rule, bool):
        return "true" if rule else "false"
    if isinstance(rule, int | float):
        return repr(rule)
    if isinstance(rule, str):
        return _string(rule)
    if not isinstance(rule, dict) or len(rule) != 1:
        raise Unsupported("not an operation")
    ((operator, args),) = rule.items()
    if not isinstance(args, list):
        args = [args]
    if operator == "var":
        item = items.get(args[0]) if args and isinstance(args[0], str) else None
        if item is None or len(args) > 1:
            raise Unsupported("unknown variable")
        return _answer(item)
    if operator == "if":
        for item in items.values():
            if item.scores and rule == score_rule(item):
                return _answer(Answerable(item.key, item.link_id)) + ".weight()"
        raise Unsupported("if")
    if operator in ("!=", "==") and len(args) == 2 and args[1] is None:
        text = f"{_write(args[0], items)}.exists()"
        return text if operator == "!=" else f"{text}.not()"
    if operator == "and" and len(args) == 2 and args[0] == {"!=": [_first(args[1]), None]}:
        return _write(args[1], items)  # the guard this module adds to comparisons
    words = {"+": "+", "-": "-", "*": "*", "/": "/", "and": "and", "or": "or"}
    words.update({value: key for key, value in _COMPARISONS.items()})
    words["==="] = "="
    words["!=="] = "!="
    if operator in words and len(args) >= 2:
        if operator not in ("+", "*", "and", "or") and len(args) != 2:
            raise Unsupported(operator)
        return "(" + f" {words[operator]} ".join(_write(arg, items) for arg in args) + ")"
    if operator in ("!", "!!") and len(args) == 1:
        inner = _write(args[0], items)
        return f"({inner}).not()" if operator == "!" else f"({inner}).exists()"
    raise Unsupported(operator)


def _first(rule: Any) -> Any:
    if isinstance(rule, dict) and len(rule) == 1:
        args = next(iter(rule.values()))
        if isinstance(args, list) and args:
            return args[0]
    return None
