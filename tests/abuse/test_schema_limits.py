"""Every string, list and mapping a schema loads has a maximum; a list's is checked first."""

import importlib
import pkgutil
import time

from marshmallow import Schema, class_registry, fields, validate

import collector
import outcomes
from collector import create_app
from collector.kinds import ListOf
from outcomes.models import SurveyQuestion
from outcomes.schemas import BoundedDict, BoundedList, answers_schema
from tests.abuse.support import row_counts


def every_schema() -> list[type[Schema]]:
    """Import every collector and outcomes module; return the schemas they define."""
    for package in (collector, outcomes):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    ours = ("collector.", "outcomes.")
    return [
        cls
        for name, classes in class_registry._registry.items()
        if name.startswith(ours)
        for cls in classes
    ]


def loaded_by_the_api(settings) -> set[type[Schema]]:
    """Return the schemas an API view loads (the API's other schemas only describe answers)."""
    app = create_app(settings)
    found = set()
    for view in app.view_functions.values():
        cls = getattr(view, "view_class", None)
        for method in [getattr(cls, m) for m in ("get", "post", "put") if hasattr(cls, m)]:
            arguments = getattr(method, "_apidoc", {}).get("arguments", {})
            for argument in arguments.get("parameters", []):
                schema = argument["schema"]
                found.add(schema if isinstance(schema, type) else type(schema))
    return found


SIZED = fields.String | fields.List | fields.Dict | ListOf


def has_maximum(field: fields.Field) -> bool:
    for check in field.validators:
        if isinstance(check, validate.Length) and check.max is not None:
            return True
        if isinstance(check, validate.OneOf | validate.Equal):
            return True
    return False


def unbounded(schema: Schema, where: str) -> list[str]:
    """Return the loaded fields of a schema (nested ones too) that take input without a limit."""
    found = []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        path = f"{where}.{name}"
        if isinstance(field, fields.List) and not isinstance(field, BoundedList):
            found.append(f"{path}: a list must be a BoundedList")
        elif isinstance(field, fields.Dict) and not isinstance(field, BoundedDict):
            found.append(f"{path}: a mapping must be a BoundedDict")
        elif isinstance(field, SIZED) and not has_maximum(field):
            found.append(f"{path}: no maximum length")
        parts = {
            "item": getattr(field, "inner", None),
            "key": getattr(field, "key_field", None),
            "value": getattr(field, "value_field", None),
        }
        for part, inner in parts.items():
            if isinstance(inner, fields.Field):
                found += unbounded(Schema.from_dict({part: inner})(), path)
        if isinstance(field, fields.Nested):
            found += unbounded(field.schema, path)
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            found += unbounded(field.inner.schema, path)
    return found


def test_every_schema_bounds_every_string_list_and_mapping_it_loads(settings):
    api_only_answers = {
        cls
        for cls in every_schema()
        if cls.__module__.startswith("collector.api.") and cls not in loaded_by_the_api(settings)
    }
    problems = []
    for cls in every_schema():
        if cls not in api_only_answers:
            problems += unbounded(cls(), f"{cls.__module__}.{cls.__name__}")
    assert problems == []


def test_every_survey_answer_type_has_a_maximum():
    questions = [
        SurveyQuestion(key=kind, label=kind, type=kind, required=False, choices=choices)
        for kind, choices in (
            ("text", []),
            ("select_one", [{"name": "a", "label": "A"}]),
            ("select_many", [{"name": "a", "label": "A"}, {"name": "b", "label": "B"}]),
        )
    ]
    assert unbounded(answers_schema(questions), "answers") == []


def test_an_application_with_250000_commitments_is_refused_at_once_and_counts(collector, db):
    before = row_counts(db)
    body = {"organisation": "Big", "commitments": ["x"] * 250_000}

    started = time.perf_counter()
    answer = collector.post("/api/v1/applications", json=body)
    spent = time.perf_counter() - started

    assert answer.status_code == 422
    assert answer.json["errors"]["json"]["commitments"] == ["Give at most 3 items."]
    assert row_counts(db) == before
    print(f"refused in {spent:.3f} s")  # was 6.9 s before the list's maximum was checked first
