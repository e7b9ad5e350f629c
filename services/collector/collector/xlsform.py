"""XLSForm import: read a workbook with pyxform within stated caps, check it, report every loss."""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from marshmallow import ValidationError
from pyxform.errors import PyXFormError
from pyxform.xls2json import parse_file_to_json

from collector.definitions import (
    NUMERIC_TYPES,
    PER_FACILITY_AGGREGATIONS,
    ChoiceSchema,
    DefinitionError,
)
from collector.expressions import ExpressionError, gives_number, parse, references
from outcomes.models import AGGREGATIONS

# XLSForm types we render, and the question type each becomes.
XLSFORM_TYPES = {
    "integer": "integer",
    "decimal": "decimal",
    "text": "text",
    "date": "date",
    "select one": "select_one",
    "select all that apply": "select_many",
    # Worked out from other answers on every save; a text when the expression is not arithmetic.
    "calculate": "decimal",
}
FROM_FILE = ("select one from file", "select all that apply from file", "select one external")
# Columns of the form's "survey" sheet that pyxform keeps and that we do not apply (a calculation
# on a question of another type than calculate: a default worked out live, which we do not do).
UNRENDERED_BINDS = ("calculate", "readonly")
EXPRESSIONS = ("relevant", "constraint")
BOUND = re.compile(r"^\s*\.\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".md")
# Caps: a workbook is a zip that can inflate far beyond its size, and pyxform holds it whole.
MAX_BYTES = 2_000_000
MAX_INFLATED = 20_000_000
MAX_ROWS = 5_000
MAX_QUESTIONS = 500
MAX_NESTING = 4
MAX_KEY = 60
LIMITS = SimpleNamespace(
    bytes=MAX_BYTES,
    inflated=MAX_INFLATED,
    rows=MAX_ROWS,
    questions=MAX_QUESTIONS,
    nesting=MAX_NESTING,
)
choice_schema = ChoiceSchema()


@dataclass
class ImportReport:
    """What an XLSForm import made of each row: questions, and what was left out and why."""

    questions: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


class ImportRefused(DefinitionError):
    """A workbook refused as a whole, with the report of why (every reason found)."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report or ImportReport()

    def lines(self) -> list[str]:
        """Return the report as lines: why it was refused, then what else would be lost."""
        return [*self.report.refused, *self.report.unsupported, *self.report.warnings]


def parse_xlsform(data: bytes, filename: str) -> ImportReport:
    """Turn an XLSForm workbook into our questions, or refuse it with every reason found."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in SUFFIXES and suffix:
        raise ImportRefused("Upload an XLSForm as .xlsx (or .xls, .csv).")
    if not suffix:  # a name without extension: the content says which reader to use
        suffix = {b"PK\x03\x04": ".xlsx", b"\xd0\xcf\x11\xe0": ".xls"}.get(data[:4], ".csv")
    if len(data) > MAX_BYTES:
        raise ImportRefused(
            f"The workbook is {len(data):,} bytes; an XLSForm may be at most {MAX_BYTES:,}."
        )
    _check_size(data, suffix)
    warnings: list[str] = []
    with tempfile.NamedTemporaryFile(suffix=suffix) as workbook:
        workbook.write(data)
        workbook.flush()
        try:
            form = parse_file_to_json(workbook.name, warnings=warnings)
        except PyXFormError as error:
            raise ImportRefused(f"This is not an XLSForm pyxform can read: {error}") from None
        except Exception as error:  # a corrupt workbook fails inside openpyxl/xlrd in many ways
            raise ImportRefused(f"This workbook could not be read: {error}") from None
    report = ImportReport(warnings=[str(w)[:300] for w in warnings[:20]])
    report.languages = _languages(form)[:10]
    deepest = _deepest(form)
    if deepest is not None:
        raise ImportRefused(
            f"'{deepest}' sits inside more than {MAX_NESTING} groups or repeats; at most "
            f"{MAX_NESTING} levels are allowed."
        )
    paths: dict[str, str] = {}
    _collect(form.get("children", []), report, paths)
    if len(report.questions) > MAX_QUESTIONS:
        report.refused.append(
            f"the form has {len(report.questions)} questions; a survey may have at most "
            f"{MAX_QUESTIONS}"
        )
    _check_references(report, paths)
    if report.refused:
        raise ImportRefused("The form was not imported; the report says why.", report)
    if not report.questions:
        raise ImportRefused(
            "The form has no question we can render; the report lists what was left out.", report
        )
    return report


def _check_size(data: bytes, suffix: str) -> None:
    """Refuse a workbook that inflates past MAX_INFLATED or has a sheet of more than MAX_ROWS."""
    if suffix in (".xlsx", ".xlsm"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                inflated = sum(entry.file_size for entry in archive.infolist())
        except (zipfile.BadZipFile, ValueError, OSError):
            raise ImportRefused(
                "This file is not an .xlsx workbook (it is not a zip archive)."
            ) from None
        if inflated > MAX_INFLATED:
            raise ImportRefused(
                f"The workbook unpacks to {inflated:,} bytes; an XLSForm may unpack to at most "
                f"{MAX_INFLATED:,}."
            )
        rows = _xlsx_rows(data)
    elif suffix == ".xls":
        rows = _xls_rows(data)
    else:
        rows = {"the file": data.count(b"\n") + 1}
    for sheet, count in rows.items():
        if count > MAX_ROWS:
            raise ImportRefused(
                f"The sheet '{sheet}' has more than {MAX_ROWS:,} rows; an XLSForm may have at "
                f"most {MAX_ROWS:,} rows in a sheet."
            )


def _xlsx_rows(data: bytes) -> dict[str, int]:
    """Count the rows with a value in each sheet, stopping past the cap."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl fails on a corrupt workbook in many ways
        raise ImportRefused(f"This workbook could not be read: {error}") from None
    counts = {}
    try:
        for sheet in book.worksheets:
            count = 0
            for row in sheet.iter_rows(values_only=True):
                if any(cell is not None for cell in row):
                    count += 1
                    if count > MAX_ROWS:
                        break
            counts[str(sheet.title)[:40]] = count
    except Exception as error:
        raise ImportRefused(f"This workbook could not be read: {error}") from None
    finally:
        book.close()
    return counts


def _xls_rows(data: bytes) -> dict[str, int]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        return {str(name)[:40]: book.sheet_by_name(name).nrows for name in book.sheet_names()}
    except Exception as error:  # xlrd fails on a corrupt workbook in many ways
        raise ImportRefused(f"This workbook could not be read: {error}") from None


def _languages(form: dict[str, Any]) -> list[str]:
    """Return the languages of the form's labels, the default first."""
    found: list[str] = []
    stack = list(form.get("children", []))
    while stack:
        child = stack.pop()
        stack.extend(child.get("children", []))
        for text in (child.get("label"), child.get("hint")):
            if isinstance(text, dict):
                found.extend(k for k in text if k not in found)
    default = form.get("default_language")
    if default in found:
        found.remove(default)
        found.insert(0, default)
    return found


def _deepest(form: dict[str, Any]) -> str | None:
    """Return the path of a row nested deeper than MAX_NESTING groups or repeats, if any."""
    stack = [(child, "", 0) for child in form.get("children", [])]
    while stack:
        child, path, depth = stack.pop()
        where = f"{path}{child.get('name', '')}"
        if depth > MAX_NESTING:
            return where
        stack.extend((inner, f"{where}/", depth + 1) for inner in child.get("children", []))
    return None


def _collect(children: list[dict[str, Any]], report: ImportReport, paths: dict[str, str]) -> None:
    """Add each child as a question, or say in the report why it was left out or refused."""
    # Each row with its path, section title, the relevance of its groups, and its repeat.
    stack: list[tuple[dict[str, Any], str, str, tuple[str, ...], str]] = [
        (child, "", "", (), "") for child in reversed(_without_counts(children))
    ]
    repeats: dict[str, str] = {}  # each repeat's path by its name
    while stack:
        child, path, section, relevant, repeat = stack.pop()
        kind, name = str(child.get("type", "")), str(child.get("name", ""))
        where = f"{path}{name}"
        if kind == "group" and name == "meta":
            continue  # pyxform's own instanceID: not a question
        held = ", ".join(str(c.get("name", "")) for c in child.get("children", []))[:200]
        if kind == "loop":
            report.unsupported.append(f"loop '{where}' (with {held}): loops are not rendered")
            continue
        if kind == "repeat" and repeat:
            report.unsupported.append(
                f"repeat '{where}' (with {held}) sits inside repeat '{repeats[repeat]}': "
                "a repeat is answered once per facility and cannot hold another repeat, so its "
                f"questions are left out (move them into '{repeats[repeat]}' or out of it)"
            )
            continue
        if kind in ("group", "repeat"):
            title = _text(child.get("label") or "", report.languages)[:200]
            inside = (*relevant, str(child.get("bind", {}).get("relevant") or ""))
            if kind == "repeat":  # pyxform refuses two repeats of one name
                repeats[name], repeat, title = where, name, title or name
                _repeat_columns(child, report, where)
            stack.extend(
                (inner, f"{where}/", title or section, inside, repeat)
                for inner in reversed(_without_counts(child.get("children", [])))
            )
            continue
        if kind in FROM_FILE:
            report.refused.append(
                f"'{where}' takes its choices from a separate file ({child.get('itemset', '')}), "
                "which an upload of one workbook cannot carry; list them on the choices sheet "
                "and use select_one / select_multiple"
            )
            continue
        if kind not in XLSFORM_TYPES:
            report.unsupported.append(f"'{where}' of type '{kind}' is not rendered")
            continue
        if len(name) > MAX_KEY:
            report.refused.append(
                f"'{where}': the name is {len(name)} characters; a question's name may have at "
                f"most {MAX_KEY}"
            )
            continue
        if name in paths:
            report.refused.append(
                f"'{paths[name]}' and '{where}' are both named '{name}'; every question needs a "
                "name of its own in the survey (rename one)"
            )
            continue
        paths[name] = where
        question = _question(child, report, where, repeat)
        if section:
            question["logic"]["section"] = section
        if repeat:
            question["logic"]["repeat"] = repeat
        question["_expressions"] += [("relevant", text, False) for text in relevant if text]
        report.questions.append(question)


def _without_counts(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the children without pyxform's own repeat_count calculations, kept on the repeat."""
    # pyxform turns a repeat_count that is not a plain ${reference} into a calculate row named
    # <repeat>_count just before the repeat: no question of the form, and never applied here
    # (a repeat is answered once per facility), so it is reported on the repeat, not asked.
    kept: list[dict[str, Any]] = []
    for child in children:
        control = child.get("control") or {}
        previous = kept[-1] if kept else {}
        generated = f"{child.get('name', '')}_count"
        if (
            child.get("type") == "repeat"
            and control.get("jr:count") == f"${{{generated}}}"
            and previous.get("name") == generated
            and previous.get("type") == "calculate"
            and set(previous) == {"name", "type", "bind"}
            and set(previous["bind"]) == {"readonly", "calculate"}
        ):
            kept.pop()
            count = str(previous["bind"]["calculate"])
            child = {**child, "control": {**control, "jr:count": count}}
        kept.append(child)
    return kept


def _repeat_columns(child: dict[str, Any], report: ImportReport, where: str) -> None:
    """Report the repeat's columns we do not apply: it is answered once for each facility."""
    for column, value in (child.get("control") or {}).items():
        if column == "jr:count":
            report.unsupported.append(
                f"repeat '{where}': repeat_count '{str(value)[:200]}' is not applied; the repeat "
                "is answered once for each of the member's facilities"
            )
        elif column != "appearance" and value not in (None, ""):
            report.unsupported.append(
                f"repeat '{where}': {column} '{str(value)[:200]}' is not applied"
            )
    report.warnings.append(
        f"repeat '{where}' is answered once for each of the member's facilities; its answers "
        "are published as each member's total over its facilities"
    )


def _check_references(report: ImportReport, paths: dict[str, str]) -> None:
    """Refuse expressions that do not parse, name a missing question, or depend on themselves."""
    depends: dict[str, set[str]] = {}
    repeat_of = {q["key"]: q["logic"].get("repeat", "") for q in report.questions}
    for question in report.questions:
        key, trees = question["key"], question.pop("_expressions")
        for column, text, columns in trees:
            try:
                tree = parse(text, columns=columns)
            except ExpressionError as error:
                report.refused.append(f"'{paths[key]}': {column} '{text[:200]}': {error}")
                continue
            logic = question["logic"]
            logic[column] = ["and", logic[column], tree] if column in logic else tree
            if column == "calculate" and not gives_number(tree):
                _calculates_text(question, report, paths[key])
            missing = sorted(references(tree) - set(paths))
            if missing:
                report.refused.append(
                    f"'{paths[key]}': {column} '{text[:200]}' refers to "
                    f"{', '.join(missing)}, which the form does not ask (or does not render)"
                )
            for other in sorted(references(tree) - set(missing)):
                _check_repeat_reference(report, paths, repeat_of, (key, column, text), other)
            if column in ("relevant", "calculate"):
                depends.setdefault(key, set()).update(references(tree) - set(missing))
    cycle = _cycle(depends)
    if cycle:
        report.refused.append(
            "relevant or calculate expressions depend on each other in a circle: "
            + " -> ".join(paths[k] for k in cycle)
        )


def _check_repeat_reference(
    report: ImportReport,
    paths: dict[str, str],
    repeat_of: dict[str, str],
    expression: tuple[str, str, str],
    other: str,
) -> None:
    """Refuse a reference into a repeat from outside it: there it has one value per facility."""
    key, column, text = expression
    inside, theirs = repeat_of.get(key, ""), repeat_of.get(other, "")
    if not theirs or theirs == inside:
        return
    if inside:
        report.refused.append(
            f"'{paths[key]}' (in repeat '{inside}'): {column} '{text[:200]}' refers to "
            f"'{paths[other]}' in repeat '{theirs}'; a repeat's question may refer only to "
            "questions of its own repeat or outside any repeat (move one of them)"
        )
        return
    report.refused.append(
        f"'{paths[key]}': {column} '{text[:200]}' refers to '{paths[other]}' in repeat "
        f"'{theirs}', which is answered once for each facility: outside the repeat it has no "
        f"single value (move '{key}' into repeat '{theirs}', or refer to a question outside it)"
    )


def _calculates_text(question: dict[str, Any], report: ImportReport, where: str) -> None:
    """Store a calculation that gives text as a text question, which aggregates only by count."""
    question["type"] = "text"
    if question["aggregation"] not in ("none", "count"):
        report.unsupported.append(
            f"'{where}': its calculation gives text, which cannot aggregate as "
            f"'{question['aggregation']}'; the question feeds no public figure (use 'count')"
        )
        question["aggregation"] = "none"


def _cycle(depends: dict[str, set[str]]) -> list[str]:
    """Return one dependency cycle (its first key repeated at the end), or an empty list."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in depends:
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(depends.get(start, ())))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return [*path[path.index(following) :], following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(depends.get(following, ()))))
    return []


def _question(
    child: dict[str, Any], report: ImportReport, where: str, repeat: str
) -> dict[str, Any]:
    """Return one question's fields from an XLSForm row."""
    bind = child.get("bind", {})
    minimum = maximum = None
    expressions = [(c, str(bind[c]), False) for c in EXPRESSIONS if bind.get(c)]
    constraint = bind.get("constraint")
    bounds = [BOUND.match(part) for part in re.split(r"\s+and\s+", str(constraint or ""))]
    if constraint and all(bounds) and not bind.get("jr:constraintMsg"):
        expressions = [e for e in expressions if e[0] != "constraint"]  # shown as bounds
        for matched in bounds:
            operator, number = matched.group(1), float(matched.group(2))  # type: ignore[union-attr]
            if operator.startswith(">"):
                minimum = number
            else:
                maximum = number
    calculation = child["type"] == "calculate"
    if calculation:
        expressions.append(("calculate", str(bind.get("calculate") or "''"), False))
    for name in UNRENDERED_BINDS:
        if bind.get(name) and not (calculation and name == "calculate"):
            report.unsupported.append(f"'{where}': {name} '{bind[name]}' is not applied")
    if child.get("choice_filter"):
        expressions.append(("choice_filter", str(child["choice_filter"]), True))
    languages = report.languages
    logic: dict[str, Any] = {}
    for column, source in (
        ("constraint_message", "jr:constraintMsg"),
        ("required_message", "jr:requiredMsg"),
    ):
        if bind.get(source):
            logic[column] = _text(bind[source], languages)[:300]
    if child.get("default") not in (None, ""):
        logic["default"] = str(child["default"])[:200]
    for column, source in (("labels", "label"), ("hints", "hint")):
        if isinstance(child.get(source), dict):
            logic[column] = {k: str(v)[:1000] for k, v in child[source].items()}
    # Our own optional columns: pyxform keeps columns it does not know on the row.
    aggregation = str(child.get("aggregation") or "none").strip()
    if aggregation not in AGGREGATIONS:
        report.unsupported.append(
            f"'{where}': aggregation '{aggregation}' is not one of {', '.join(AGGREGATIONS)}; "
            "the question feeds no public figure"
        )
        aggregation = "none"
    kind = XLSFORM_TYPES[child["type"]]
    fits = {"sum": NUMERIC_TYPES, "mean": NUMERIC_TYPES, "median": NUMERIC_TYPES}
    if (aggregation in fits and kind not in fits[aggregation]) or (
        aggregation == "share_yes" and kind != "boolean"
    ):
        report.unsupported.append(
            f"'{where}': a {kind} question cannot aggregate as '{aggregation}'; "
            "the question feeds no public figure (use 'count')"
        )
        aggregation = "none"
    if repeat and aggregation not in PER_FACILITY_AGGREGATIONS:
        report.unsupported.append(
            f"'{where}': a question in repeat '{repeat}' is published as each member's total "
            f"over its facilities, so it cannot aggregate as '{aggregation}'; the question feeds "
            "no public figure (use 'sum' or 'none')"
        )
        aggregation = "none"
    return {
        "key": child["name"],
        "label": _text(child.get("label") or child.get("name"), languages)[:300],
        "help_text": _text(child.get("hint") or "", languages)[:1000],
        "type": kind,
        "minimum": minimum,
        "maximum": maximum,
        "required": not calculation
        and str(bind.get("required", "")).lower() in {"yes", "true", "true()"},
        "choices": _choices(child, report, where),
        "aggregation": aggregation,
        "unit": str(child.get("unit") or "")[:40],
        "logic": logic,
        "_expressions": expressions,
    }


def _choices(child: dict[str, Any], report: ImportReport, where: str) -> list[dict[str, str]]:
    """Return a select question's choices, each checked as the question form checks them."""
    choices, seen = [], set()
    for choice in child.get("choices", [])[:1000]:
        name = str(choice.get("name", ""))
        loaded = {"name": name, "label": _text(choice.get("label") or name, report.languages)}
        try:
            checked = choice_schema.load(loaded)
        except ValidationError as error:
            problems = "; ".join(
                f"{part} {', '.join(map(str, messages))}"
                for part, messages in error.normalized_messages().items()
            )
            report.refused.append(f"'{where}': the choice '{loaded['name'][:60]}': {problems}")
            continue
        if checked["name"] in seen and not child.get("choice_filter"):
            report.refused.append(
                f"'{where}': two choices are named '{loaded['name'][:60]}'; each needs its own"
            )
        elif checked["name"] not in seen or child.get("choice_filter"):
            if isinstance(choice.get("label"), dict):
                checked["labels"] = {k: str(v)[:300] for k, v in choice["label"].items()}
            columns = {k: str(v)[:200] for k, v in choice.items() if k not in ("name", "label")}
            if columns and child.get("choice_filter"):
                checked["columns"] = dict(list(columns.items())[:10])
            choices.append(checked)
        seen.add(checked["name"])
    if len(child.get("choices", [])) > 200:
        report.refused.append(f"'{where}' has more than 200 choices; at most 200 are allowed")
    return choices


def _text(value: Any, languages: list[str]) -> str:
    """Return a text in the form's default language (its first)."""
    if not isinstance(value, dict):
        return str(value)
    first = next((value[lang] for lang in languages if value.get(lang)), "")
    return str(first or next(iter(value.values()), ""))
