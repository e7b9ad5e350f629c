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


SEED_CODES = {
    "ps_certificates",
    "coc_certificates",
    "certified_countries",
    "ps_external_leverage_pct",
    "auditing_firms",
    "auditing_firm_countries",
    "auditors_trained",
    "members_stakeholders_trained",
    "people_in_ps_facilities",
    "board_meetings",
    "standards_committee_meetings",
}


def test_every_data_point_of_the_seed_page_and_the_extras_are_catalogued():
    codes = {indicator.code for indicator in CATALOGUE}
    assert (
        SEED_CODES | {"members_by_class", "applications_received", "survey_response_rate"} <= codes
    )


def test_every_indicator_reads_only_known_topics_and_publishes_its_metadata():
    from outcomes.catalogue import TOPICS

    for indicator in CATALOGUE:
        assert indicator.sources and indicator.sources <= TOPICS, indicator.code
        meta = indicator.metadata()
        assert meta["rule"] == indicator.rule and meta["headline"]["period"] == "all"
