import pytest
from marshmallow import ValidationError

from outcomes.models import SurveyQuestion
from outcomes.schemas import TOO_LARGE, answers_schema


def question(**fields) -> SurveyQuestion:
    base = {
        "key": "employees",
        "label": "Employees",
        "type": "integer",
        "unit": "people",
        "minimum": 0,
        "maximum": 1000,
        "required": True,
        "choices": [],
    }
    return SurveyQuestion(**{**base, **fields})


def test_an_out_of_range_answer_is_refused_in_words_with_its_unit():
    with pytest.raises(ValidationError) as error:
        answers_schema([question()]).load({"employees": 5000})
    assert error.value.messages == {"employees": ["Must be between 0 and 1000 people."]}


def test_a_submission_needs_required_answers_but_a_draft_does_not():
    with pytest.raises(ValidationError):
        answers_schema([question()]).load({})
    assert answers_schema([question()], partial=True).load({}) == {}


def test_an_integer_question_refuses_text_and_fractions():
    schema = answers_schema([question()])
    for bad in ("12", 1.5, True):
        with pytest.raises(ValidationError):
            schema.load({"employees": bad})


def test_unknown_question_keys_are_refused():
    with pytest.raises(ValidationError) as error:
        answers_schema([question()]).load({"employees": 1, "profit": 2})
    assert "profit" in error.value.messages


def test_one_sided_bounds_read_naturally():
    schema = answers_schema([question(maximum=None, unit="")])
    with pytest.raises(ValidationError) as error:
        schema.load({"employees": -1})
    assert error.value.messages == {"employees": ["Must be at least 0."]}


def test_a_required_select_many_question_needs_at_least_one_choice():
    sites = question(
        key="sites", type="select_many", minimum=None, maximum=None, choices=[{"name": "river"}]
    )
    with pytest.raises(ValidationError) as error:
        answers_schema([sites]).load({"sites": []})
    assert error.value.messages == {"sites": ["Choose at least one."]}
    assert answers_schema([sites], partial=True).load({"sites": []}) == {"sites": []}
    assert answers_schema([sites]).load({"sites": ["river"]}) == {"sites": ["river"]}


def test_a_number_past_what_a_double_holds_is_refused_in_words_not_a_server_error():
    unbounded = answers_schema([question(minimum=None, maximum=None)])
    with pytest.raises(ValidationError) as error:
        unbounded.load({"employees": 10**400})
    assert error.value.messages == {"employees": [TOO_LARGE]}
    assert unbounded.load({"employees": 10**15}) == {"employees": 10**15}
