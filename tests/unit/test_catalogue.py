from outcomes.catalogue import CATALOGUE, QUESTIONS


def test_codes_are_unique_and_every_indicator_answers_one_of_the_four_questions():
    codes = [indicator.code for indicator in CATALOGUE]
    assert len(codes) == len(set(codes))
    assert {indicator.question for indicator in CATALOGUE} <= set(QUESTIONS)


def test_every_indicator_states_its_counting_rule_and_unit():
    for indicator in CATALOGUE:
        assert len(indicator.rule) > 30, indicator.code
        assert indicator.unit, indicator.code


def test_the_walking_skeleton_indicator_is_there():
    assert "ps_certificates" in {indicator.code for indicator in CATALOGUE}
