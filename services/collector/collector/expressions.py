"""XLSForm expressions (relevant, constraint, calculate, choice_filter): parse once, evaluate.

An expression is parsed at import into a small JSON tree stored with the question; the server
evaluates it here and the browser with static/form-logic.js, which follows the same rules:
- a value is a number, a string ("" when unanswered) or a boolean; a select-many answer is its
  choice names joined by spaces, as in XForms;
- = and != compare as numbers when either side is a number, as booleans when either is one,
  else as strings; <, <=, >, >= always compare as numbers (a date as its days since 1970);
- a string that is not a number is NaN as a number, and NaN compares false.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

MAX_LENGTH = 1000  # characters of one expression
MAX_DEPTH = 30  # nesting of brackets and operators

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<ref>\$\{[^}]*\})"
    r"|(?P<op><=|>=|!=|[=<>+\-*(),])"
    r"|(?P<name>[A-Za-z_][\w.:-]*)"
    r"|(?P<dot>\.)"
    r"|(?P<bad>\S))"
)
# Function: (fewest, most) arguments; None is any number.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "selected": (2, 2),
    "count-selected": (1, 1),
    "not": (1, 1),
    "true": (0, 0),
    "false": (0, 0),
    "if": (3, 3),
    "coalesce": (2, 2),
    "concat": (1, None),
    "string-length": (1, 1),
    "contains": (2, 2),
    "starts-with": (2, 2),
    "ends-with": (2, 2),
    "substr": (2, 3),
    "number": (1, 1),
    "int": (1, 1),
    "string": (1, 1),
    "boolean": (1, 1),
    "round": (1, 2),
    "today": (0, 0),
}
BINARY = {"or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}
BINARY.update({"+": 5, "-": 5, "*": 6, "div": 6, "mod": 6})
NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


class ExpressionError(ValueError):
    """An expression we cannot parse or do not support; the message says why."""


def parse(text: str, *, columns: bool = False) -> list[Any]:
    """Return the tree of one XLSForm expression, or raise ExpressionError saying why not.

    With columns (a choice_filter), a bare name is a column of the choices sheet.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"it is longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    parser = _Parser(tokens, columns)
    tree = parser.expression(0, 0)
    if parser.position != len(tokens):
        raise ExpressionError(f"unexpected '{tokens[parser.position][1]}'")
    return tree


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    for match in TOKEN.finditer(text.strip()):
        kind = match.lastgroup or "bad"
        value = match.group(kind)
        if kind == "bad":
            hint = " (refer to other questions as ${name})" if value == "/" else ""
            raise ExpressionError(f"'{value}' is not supported{hint}")
        if kind == "name" and value in ("and", "or", "div", "mod"):
            kind = "op"
        tokens.append((kind, value))
    return tokens


class _Parser:
    """Precedence climbing over the tokens; depth is bounded so hostile input cannot recurse."""

    def __init__(self, tokens: list[tuple[str, str]], columns: bool) -> None:
        self.tokens = tokens
        self.columns = columns
        self.position = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, value: str) -> None:
        if self.peek()[1] != value:
            found = self.peek()[1] or "the end"
            raise ExpressionError(f"expected '{value}' but found {found}")
        self.position += 1

    def expression(self, level: int, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"it nests deeper than {MAX_DEPTH} levels")
        left = self.unary(depth + 1)
        while True:
            kind, value = self.peek()
            strength = BINARY.get(value) if kind == "op" else None
            if strength is None or strength <= level:
                return left
            self.position += 1
            right = self.expression(strength, depth + 1)
            left = [value, left, right]

    def unary(self, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"it nests deeper than {MAX_DEPTH} levels")
        kind, value = self.peek()
        self.position += 1
        if kind == "op" and value == "-":
            return ["neg", self.unary(depth + 1)]
        if kind == "number":
            return ["num", float(value)]
        if kind == "string":
            return ["str", value[1:-1]]
        if kind == "dot":
            return ["."]
        if kind == "ref":
            name = value[2:-1].strip()
            if not NAME.match(name):
                raise ExpressionError(f"'{value}' does not name a question")
            return ["ref", name]
        if kind == "op" and value == "(":
            inner = self.expression(0, depth + 1)
            self.take(")")
            return inner
        if kind == "name":
            return self.call(value, depth)
        self.position -= 1
        raise ExpressionError(f"unexpected {value or 'end of the expression'}")

    def call(self, name: str, depth: int) -> list[Any]:
        if self.peek()[1] != "(" and self.columns:
            return ["col", name]
        if self.peek()[1] != "(":
            raise ExpressionError(f"'{name}' is not supported (refer to questions as ${{name}})")
        if name not in FUNCTIONS:
            raise ExpressionError(
                f"the function {name}() is not supported; supported: {', '.join(sorted(FUNCTIONS))}"
            )
        self.take("(")
        arguments: list[Any] = []
        if self.peek()[1] != ")":
            arguments.append(self.expression(0, depth + 1))
            while self.peek()[1] == ",":
                self.position += 1
                arguments.append(self.expression(0, depth + 1))
        self.take(")")
        fewest, most = FUNCTIONS[name]
        if len(arguments) < fewest or (most is not None and len(arguments) > most):
            raise ExpressionError(f"{name}() takes {fewest} to {most or 'any number of'} arguments")
        return ["call", name, *arguments]


def form_errors(
    questions: tuple[tuple[str, bool, dict[str, Any], tuple[dict[str, Any], ...]], ...],
    answers: dict[str, Any],
    *,
    submitted: bool,
) -> dict[str, list[str]]:
    """Apply a form's rules to stored answers: relevance, required, constraint, choice filter.

    questions are (key, required, logic, choices) in display order. A question is relevant when
    its relevant expression holds; the answer of a question found not relevant counts as empty
    for the questions after it.
    """
    errors: dict[str, list[str]] = {}
    values = dict(answers)
    for key, required, logic, choices in questions:
        answer = answers.get(key)
        empty = answer is None or answer == "" or answer == []
        relevant = logic.get("relevant")
        if relevant is not None and not boolean(evaluate(relevant, values)):
            if not empty:
                errors[key] = [
                    "This question does not apply given your other answers: leave it empty."
                ]
            values[key] = None
            continue
        if empty:
            if required and submitted:
                errors[key] = [logic.get("required_message") or "Answer this question."]
            continue
        constraint = logic.get("constraint")
        if constraint is not None and not boolean(evaluate(constraint, values, answer)):
            errors[key] = [
                logic.get("constraint_message") or "This answer does not meet the form's rule."
            ]
            continue
        offered = logic.get("choice_filter")
        if offered is not None:
            names = {
                c["name"]
                for c in choices
                if boolean(evaluate(offered, values, choice={**c.get("columns", {}), **c}))
            }
            chosen = answer if isinstance(answer, list) else [answer]
            if not set(chosen) <= names:
                errors[key] = ["Choose one of the choices offered for your other answers."]
    return errors


def calculated(
    questions: tuple[tuple[str, bool, dict[str, Any], tuple[dict[str, Any], ...]], ...],
    answers: dict[str, Any],
    numeric: frozenset[str],
) -> dict[str, Any]:
    """Return the answers with each calculated question's value worked out from the others.

    Whatever was sent for a calculated question is replaced. A calculation may read one that
    comes after it, so values settle in passes (the import refuses circles); one that is not
    relevant, or whose result is not a finite number where a number is stored, is empty.
    """
    values = dict(answers)
    formulas = [
        (key, logic) for key, _required, logic, _choices in questions if "calculate" in logic
    ]
    for _ in range(len(formulas)):
        before = dict(values)
        for key, logic in formulas:
            relevant = logic.get("relevant")
            if relevant is not None and not boolean(evaluate(relevant, values)):
                values[key] = None
                continue
            result = evaluate(logic["calculate"], values)
            if key in numeric:
                amount = number(result)
                values[key] = amount if math.isfinite(amount) else None
            else:
                values[key] = string(result)[:1000] or None
        if values == before:
            break
    return values


def gives_number(tree: list[Any]) -> bool:
    """Tell whether an expression always gives a number (arithmetic, number(), round()...)."""
    kind = tree[0]
    if kind == "call" and tree[1] == "if":
        return gives_number(tree[3]) and gives_number(tree[4])
    if kind == "call":
        return tree[1] in ("number", "int", "round", "count-selected", "string-length")
    return kind in ("num", "neg", "+", "-", "*", "div", "mod")


def references(tree: list[Any]) -> set[str]:
    """Return the names of the questions an expression refers to."""
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if node[0] == "ref":
            found.add(node[1])
        else:
            stack.extend(part for part in node[1:] if isinstance(part, list))
    return found


def evaluate(
    tree: list[Any], values: dict[str, Any], current: Any = "", choice: dict[str, Any] | None = None
) -> Any:
    """Return an expression's value given the answers (by question key) and the current one."""
    kind = tree[0]
    if kind == "num" or kind == "str":
        return tree[1]
    if kind == "col":
        return str((choice or {}).get(tree[1], ""))
    if kind == ".":
        return _value(current)
    if kind == "ref":
        return _value(values.get(tree[1]))
    if kind == "neg":
        return -number(evaluate(tree[1], values, current, choice))
    if kind == "call":
        return _call(tree[1], [evaluate(a, values, current, choice) for a in tree[2:]])
    if kind in ("and", "or"):
        left = boolean(evaluate(tree[1], values, current, choice))
        if left == (kind == "or"):
            return left
        return boolean(evaluate(tree[2], values, current, choice))
    left, right = (
        evaluate(tree[1], values, current, choice),
        evaluate(tree[2], values, current, choice),
    )
    if kind in ("=", "!="):
        return _equal(left, right) == (kind == "=")
    if kind in ("<", "<=", ">", ">="):
        a, b = number(left), number(right)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[kind]
    a, b = number(left), number(right)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "div":
        return a / b if b else (math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a))
    return math.fmod(a, b) if b and math.isfinite(a) else math.nan  # mod


def _value(answer: Any) -> Any:
    """Return an answer as an expression value: unanswered is "", several choices space-joined."""
    if answer is None:
        return ""
    if isinstance(answer, list):
        return " ".join(map(str, answer))
    if isinstance(answer, bool):
        return "1" if answer else "0"  # a yes/no answer stored as a boolean
    if isinstance(answer, int):  # beyond a double's range it is infinite, as in the browser
        return float(answer) if abs(answer) < 1e308 else (math.inf if answer > 0 else -math.inf)
    return answer


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return boolean(left) == boolean(right)
    if isinstance(left, float) or isinstance(right, float):
        return number(left) == number(right)
    return str(left) == str(right)


def number(value: Any) -> float:
    """Return XPath's number() of a value; a date counts its days since 1970-01-01."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", text):
        return float(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return float((date.fromisoformat(text) - date(1970, 1, 1)).days)
        except ValueError:
            return math.nan
    return math.nan


def boolean(value: Any) -> bool:
    """Return XPath's boolean() of a value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return not (value == 0 or math.isnan(value))
    return value != ""


def string(value: Any) -> str:
    """Return XPath's string() of a value; whole numbers without a decimal point."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value == int(value) else repr(value)
    return str(value)


def _call(name: str, args: list[Any]) -> Any:
    if name == "selected":
        return string(args[1]).strip() in string(args[0]).split()
    if name == "count-selected":
        return float(len(string(args[0]).split()))
    if name == "not":
        return not boolean(args[0])
    if name in ("true", "false"):
        return name == "true"
    if name == "if":
        return args[1] if boolean(args[0]) else args[2]
    if name == "coalesce":
        return args[0] if string(args[0]) != "" else args[1]
    if name == "concat":
        return "".join(string(a) for a in args)
    if name == "string-length":
        return float(len(string(args[0])))
    if name == "contains":
        return string(args[1]) in string(args[0])
    if name == "starts-with":
        return string(args[0]).startswith(string(args[1]))
    if name == "ends-with":
        return string(args[0]).endswith(string(args[1]))
    if name == "substr":  # ODK's substr(string, start, end), zero-based
        text, start = string(args[0]), _index(args[1])
        end = _index(args[2]) if len(args) > 2 else len(text)
        return text[start:end]
    if name == "number":
        return number(args[0])
    if name == "int":
        value = number(args[0])
        return value if math.isnan(value) or math.isinf(value) else float(math.trunc(value))
    if name == "string":
        return string(args[0])
    if name == "boolean":
        return boolean(args[0])
    if name == "round":
        value, places = number(args[0]), number(args[1]) if len(args) > 1 else 0.0
        if not math.isfinite(places):
            return math.nan
        # Half away from zero, as JavaRosa and the browser code do; beyond 15 places a double
        # has no more digits, so the places are kept within +-15 (the browser does the same).
        scale = 10.0 ** max(-15, min(15, int(places)))
        if not math.isfinite(value * scale):
            return value
        return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)
    return date.today().isoformat()  # today


def _index(value: Any) -> int:
    found = number(value)  # an infinite index is past any text's end, as in the browser
    return 0 if math.isnan(found) else max(0, int(max(-1.0, min(found, 1e15))))
