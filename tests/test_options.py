"""The option objects (gridmap.options): each checks its values, they round-trip
through plain dicts, keywords build them, and a written plan gives them back."""

from __future__ import annotations

import json

import pytest
from conftest import grid_city

import gridmap
from gridmap import OptionError
from gridmap.options import (
    KEYWORDS,
    Balance,
    Inputs,
    Options,
    Population,
    Search,
    SpecialGrids,
    Workload,
    options_from_keywords,
)

BAD = [
    (Balance, {"target": 0}, "target must be a positive number of households per grid"),
    (Balance, {"target": float("nan")}, "target must be a positive number"),
    (Balance, {"tolerance": 1.5}, "tolerance must be a fraction between 0 and 1"),
    (Balance, {"tolerance": 0}, "tolerance must be a fraction between 0 and 1"),
    (Balance, {"by": ""}, "by must name the balance field"),
    (Balance, {"split_above": -1}, "split_above must be a positive number or None"),
    (Balance, {"community_target": 0}, "community_target must be a positive number"),
    (Balance, {"community_tolerance": 1}, "community_tolerance must be a fraction"),
    (Balance, {"targets": {"old": (250, 2)}}, "targets must map a community type"),
    (Balance, {"targets": {"old": -5}}, "'old': -5"),
    (Population, {"max_distance": -1}, "max_distance must be a positive number"),
    (Population, {"dwelling_size": 0}, "dwelling_size must be a positive number"),
    (Population, {"persons_per_household": "2"}, "persons_per_household must be"),
    (Population, {"default_levels": True}, "default_levels must be a positive number"),
    (SpecialGrids, {"road_depth": 0}, "road_depth must be a positive number"),
    (SpecialGrids, {"road_max_length": -5}, "road_max_length must be a positive number"),
    (SpecialGrids, {"road_max_load": 0}, "road_max_load must be a positive number or None"),
    (SpecialGrids, {"unit_min_area": 0}, "unit_min_area must be a positive number"),
    (Workload, {"capacity": 0}, "capacity"),
    (Search, {"seed": 1.5}, "seed must be a whole number or None"),
    (Search, {"restarts": 0}, "restarts must be a whole number of 1 or more"),
    (Search, {"restarts": True}, "restarts must be a whole number of 1 or more"),
    (Search, {"exact": "yes"}, "exact must be True or False"),
    (Search, {"islands": "drop"}, "islands must be one of ['own', 'nearest', 'error']"),
    (Inputs, {"division_code": "31010"}, "division_code must be a 6-digit"),
    (Inputs, {"strict": 1}, "strict must be True or False"),
    (Inputs, {"allow_overlaps": "no"}, "allow_overlaps must be True or False"),
    (Inputs, {"crs": "EPSG:4326"}, "is not a projected CRS in metres"),
    (Inputs, {"crs": "EPSG:999999"}, "is not a CRS PROJ knows"),
]


@pytest.mark.parametrize(("kind", "kwargs", "words"), BAD,
                         ids=[f"{k.__name__}-{next(iter(kw))}" for k, kw, _ in BAD])
def test_each_option_object_refuses_a_bad_value_with_the_message(kind, kwargs, words):
    with pytest.raises(OptionError) as info:
        kind(**kwargs)
    assert len(info.value.problems) == 1
    assert words in info.value.problems[0]
    # the value seen is in the message
    value = next(iter(kwargs.values()))
    if not isinstance(value, dict):
        assert repr(value) in info.value.problems[0] or str(value) in info.value.problems[0]


def test_an_option_object_says_all_its_bad_values_at_once():
    with pytest.raises(OptionError, match="3 problems in the options") as info:
        Balance(target=-1, tolerance=2, split_above=0)
    assert [p.split(" ")[0] for p in info.value.problems] == ["target", "tolerance",
                                                              "split_above"]


def test_good_values_are_normalised():
    assert Balance(targets={"old": (200, 0.15), 7: 400}).targets == {
        "old": (200.0, 0.15), "7": 400.0}
    assert Population(groups="elderly").groups == ("elderly",)
    special = SpecialGrids(road_names="南京东路", unit_kinds="school")
    assert special.road_names == ("南京东路",) and special.road_grids
    assert special.unit_kinds == frozenset({"school"})
    assert Workload(capacity=400).capacity == 400.0
    inputs = Inputs(division_code=310101, barriers="railway")
    assert inputs.division_code == "310101" and inputs.barriers == frozenset({"railway"})
    assert Search(seed=None).seed is None


def _unusual() -> Options:
    """Options with a value other than the default in every group."""
    return Options(
        balance=Balance(target=250, tolerance=0.15, by="pop_actual",
                        targets={"old": (200, 0.2), "estate": 400}, split_above=500,
                        community_target=2000),
        population=Population(max_distance=30, dwelling_size=80, groups=("elderly",)),
        special=SpecialGrids(road_grids=True, road_classes=("primary",),
                             road_names=("南京东路",), unit_kinds=frozenset({"school"}),
                             road_max_load=900),
        workload=Workload({"households": 1, "elderly": 0.5}, capacity=400),
        search=Search(seed=7, restarts=3, exact=False, islands="nearest"),
        inputs=Inputs(columns={"households": "HH"}, id_column="bid", crs="EPSG:32651",
                      division_code="310101", barriers=frozenset({"railway"}),
                      cut_cost={"street": 1.0}),
    )


def test_options_round_trip_through_a_plain_dict():
    options = _unusual()
    data = options.to_dict()
    # plain JSON: what metrics.json holds
    back = Options.from_dict(json.loads(json.dumps(data)))
    assert back == options
    assert back.balance.targets == {"old": (200.0, 0.2), "estate": 400.0}
    assert back.special.unit_kinds == frozenset({"school"})
    assert Options.from_dict(Options().to_dict()) == Options()
    # fields missing take their defaults, fields not known are ignored
    assert Options.from_dict({"balance": {"target": 250, "no_such": 1}}) == Options(
        balance=Balance(target=250))


def test_every_field_is_a_keyword_of_delineate():
    for name, kind in (("balance", Balance), ("population", Population),
                       ("special", SpecialGrids), ("search", Search), ("inputs", Inputs)):
        for f in kind.__dataclass_fields__:
            assert KEYWORDS[f] == (name, f)
    assert KEYWORDS["worker_capacity"] == ("workload", "capacity")


def test_an_unknown_keyword_is_a_type_error_with_a_suggestion():
    with pytest.raises(TypeError, match=r"delineate\(\) got unexpected keyword "
                       r"argument\(s\) \['tolerence'\]\. Did you mean 'tolerance'\?"):
        options_from_keywords({}, {"tolerence": 0.1})
    with pytest.raises(TypeError, match=r"repartition\(\) got unexpected keyword "
                       r"argument\(s\) \['zzz'\]\.$"):
        options_from_keywords({}, {"zzz": 1}, function="repartition")
    b, s = grid_city(2, 2)
    with pytest.raises(TypeError, match="Did you mean 'restarts'"):
        gridmap.delineate(b, s, target=200, restart=2)


def test_a_keyword_is_laid_over_the_object_of_its_group():
    base = Balance(target=250, tolerance=0.2, by="pop_actual")
    options, problems = options_from_keywords(
        {"balance": base, "search": Search(seed=3, restarts=2)},
        {"target": 300, "exact": False, "worker_capacity": 450})
    assert problems == []
    assert options.balance == Balance(target=300, tolerance=0.2, by="pop_actual")
    assert options.search == Search(seed=3, restarts=2, exact=False)
    assert options.workload.capacity == 450.0
    assert base.target == 250  # the object given is not changed
    # nothing given: the defaults
    assert options_from_keywords() == (Options(), [])


def test_a_workload_formula_may_be_given_as_a_mapping():
    options, problems = options_from_keywords({"workload": {"households": 2}}, {})
    assert problems == [] and options.workload == Workload({"households": 2})
    options, problems = options_from_keywords({"workload": {"households": 2}},
                                              {"worker_capacity": 100})
    assert problems == [] and options.workload == Workload({"households": 2}, capacity=100)


def test_every_bad_value_of_every_group_is_collected():
    options, problems = options_from_keywords(
        {"search": "fast"}, {"target": -1, "restarts": 0, "division_code": "1"})
    assert len(problems) == 4
    assert problems[0].startswith("target must be a positive number")
    assert problems[1] == "search must be a gridmap.Search, got str."
    assert problems[2].startswith("restarts must be a whole number")
    assert problems[3].startswith("division_code must be a 6-digit")
    # a group refused takes its defaults, so the work can say the rest
    assert options.balance == Balance() and options.search == Search()
    b, s = grid_city(2, 2)
    with pytest.raises(gridmap.LayerValidationError) as info:
        gridmap.delineate(b, s, target=-1, restarts=0)
    assert len(info.value.problems) == 2


def test_a_written_plan_gives_its_options_back(tmp_path):
    b, s = grid_city(2, 2)
    balance = Balance(target=200, tolerance=0.15, split_above=250)
    plan = gridmap.delineate(b, s, balance=balance, search=Search(seed=5),
                             workload={"households": 1.0}, division_code="310101",
                             worker_capacity=300, progress=False)
    assert plan.options.balance == balance
    assert plan.options.search.seed == 5 and plan.options.inputs.division_code == "310101"
    assert plan.options.workload == Workload({"households": 1.0}, capacity=300)
    plan.to_file(tmp_path / "plan")
    back = gridmap.read_plan(tmp_path / "plan")
    assert back.options == plan.options
    assert json.loads((tmp_path / "plan" / "metrics.json").read_text(
        encoding="utf-8"))["options"] == plan.options.to_dict()


def test_map_schemes_are_mapclassify_classifiers_and_importing_gridmap_skips_mapclassify():
    # the schemes are listed, not read from mapclassify at import: every run of
    # the command line would pay for importing mapclassify and scikit-learn
    import subprocess
    import sys

    import mapclassify

    from gridmap.options import MAP_SCHEMES

    assert set(MAP_SCHEMES) <= set(mapclassify.CLASSIFIERS) - {"UserDefined"}
    code = ("import sys, gridmap, gridmap.cli; "
            "print(sorted({'mapclassify', 'sklearn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
