"""The policy document: defaults, JSON/TOML, errors naming the field, revisions, round trips."""

from __future__ import annotations

import json
import re
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import DEFAULT_POLICY, ContactPolicy, PolicyError, PupilPeers, parse_policy
from storage.models import Role

ONE = {"capacity": 1, "per_minute": 1}
NO_RATE = {"capacity": 2}
DOC = Path(__file__).parents[2] / "docs" / "moderation.md"


def _doc_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_defaults_are_the_safe_ones() -> None:
    p = DEFAULT_POLICY
    assert p.version == 1 and p.pupil_peers == PupilPeers.TEACHER_CHANNELS
    assert not (p.teachers_reach_all_pupils or p.teachers_reach_all_parents)
    assert not (p.parents_reach_other_parent or p.pupils_reach_own_parents)
    assert p.partner_schools == frozenset() and not p.night_closure.enabled
    assert (p.quiet_hours.start, p.quiet_hours.end) == (time(20), time(7))
    assert p.quiet_hours.weekends and Role.PUPIL not in p.quiet_hours.roles
    assert parse_policy("{}") == DEFAULT_POLICY == parse_policy("", "toml")


def test_documented_examples_parse_and_agree() -> None:
    from_toml = parse_policy(_doc_block("toml"), "toml")
    from_json = parse_policy(_doc_block("json"), "json")
    assert from_toml == from_json
    assert from_toml.version == 3 and from_toml.night_closure.enabled
    assert from_toml.quiet_hours.start == time(19, 30)
    assert from_toml.rate_limits.person[Role.PUPIL].capacity == 5


def test_toml_native_times() -> None:
    policy = parse_policy("[quiet_hours]\nstart = 21:15:00\n", "toml")
    assert policy.quiet_hours.start == time(21, 15)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"versoin": 2}, "versoin"),
        ({"version": 0}, "version"),
        ({"pupil_peers": "always"}, "pupil_peers"),
        ({"quiet_hours": {"start": "25:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"roles": ["janitor"]}}, "quiet_hours.roles.0"),
        ({"night_closure": {"enabled": "perhaps"}}, "night_closure.enabled"),
        ({"partner_schools": ["75001"]}, "partner_schools.0"),
        ({"partner_roles": ["teacher", "dpo"]}, "partner_roles"),
        ({"rate_limits": {"school": {**ONE, "capacity": 0}}}, "rate_limits.school.capacity"),
        ({"rate_limits": {"person": {"operator": ONE}}}, "rate_limits.person.operator"),
        ({"rate_limits": {"role": {"pupil": NO_RATE}}}, "rate_limits.role.pupil.per_minute"),
        ({"designated_adults": [""]}, "designated_adults.0"),
    ],
)  # fmt: skip
def test_errors_name_the_field(document: dict[str, object], path: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(json.dumps(document))
    assert [p for p, _ in caught.value.problems] == [path]
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.status_hint == 400


def test_every_problem_is_reported() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy('{"version": -1, "typo": true, "quiet_hours": {"end": "x"}}')
    assert {p for p, _ in caught.value.problems} == {"version", "typo", "quiet_hours.end"}


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("{", "json"), ("[1, 2]", "json"), ("version = ", "toml"), ("{}", "yaml")],
)
def test_unreadable_documents(text: str, fmt: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text, fmt)


def test_revisions_must_follow_each_other() -> None:
    current = parse_policy('{"version": 4}')
    revised = current.revise({"version": 5, "parents_reach_other_parent": True})
    assert revised.version == 5 and revised.parents_reach_other_parent
    for stale in (4, 6):
        with pytest.raises(PolicyError) as caught:
            current.revise({"version": stale})
        assert caught.value.problems == [("version", "must be 5 (current + 1)")]
    with pytest.raises(PolicyError):
        current.revise({"version": 5, "pupil_peers": "always"})


participant = st.sampled_from(["teacher", "staff", "director", "pupil", "parent"])
clock = st.times().map(lambda t: t.replace(microsecond=0).isoformat())
bucket = st.fixed_dictionaries(
    {"capacity": st.integers(1, 10_000), "per_minute": st.integers(1, 10_000)}
)
policies = st.fixed_dictionaries(
    {},
    optional={
        "version": st.integers(1, 10_000),
        "pupil_peers": st.sampled_from(["never", "teacher_channels"]),
        "teachers_reach_all_pupils": st.booleans(),
        "teachers_reach_all_parents": st.booleans(),
        "parents_reach_other_parent": st.booleans(),
        "pupils_reach_own_parents": st.booleans(),
        "partner_schools": st.lists(st.from_regex(r"\A[0-9]{7}[A-Z]\Z"), max_size=3),
        "partner_roles": st.lists(participant, max_size=5),
        "designated_adults": st.lists(st.from_regex(r"\A[a-z0-9-]{1,20}\Z"), max_size=3),
        "moderators": st.lists(st.from_regex(r"\A[a-z0-9-]{1,20}\Z"), max_size=3),
        "quiet_hours": st.fixed_dictionaries(
            {},
            optional={
                "start": clock,
                "end": clock,
                "weekends": st.booleans(),
                "roles": st.lists(participant),
            },
        ),
        "night_closure": st.fixed_dictionaries(
            {"enabled": st.booleans(), "start": clock, "end": clock, "weekends": st.booleans()}
        ),
        "rate_limits": st.fixed_dictionaries(
            {},
            optional={
                "person": st.dictionaries(participant, bucket),
                "role": st.dictionaries(participant, bucket),
                "school": bucket,
            },
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(policies)
def test_random_policies_validate_and_round_trip(document: dict[str, object]) -> None:
    policy = parse_policy(json.dumps(document))
    assert parse_policy(policy.to_json()) == policy
    assert ContactPolicy.model_validate(policy.model_dump(mode="json")) == policy
    assert policy.revise({**policy.model_dump(mode="json"), "version": policy.version + 1})
