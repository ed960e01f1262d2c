import gc
import time
import tracemalloc

import pytest
from conveyor_workflow._matrix import (
    MatrixError,
    expand_matrix,
    matrix_job_name,
    matrix_needs_late_evaluation,
    name_uses_matrix,
)
from hypothesis import given
from hypothesis import strategies as st


def test_product_in_definition_order_first_key_slowest():
    assert expand_matrix({"os": ["ubuntu", "windows"], "node": [18, 20], "arch": ["x64"]}) == [
        {"os": "ubuntu", "node": 18, "arch": "x64"},
        {"os": "ubuntu", "node": 20, "arch": "x64"},
        {"os": "windows", "node": 18, "arch": "x64"},
        {"os": "windows", "node": 20, "arch": "x64"},
    ]


def test_exclude_matches_partially():
    matrix = {
        "os": ["mac", "win"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "mac", "version": 12, "environment": "production"},
            {"os": "win", "version": 16},
        ],
    }
    legs = expand_matrix(matrix)
    assert len(legs) == 12 - 1 - 2
    assert {"os": "mac", "version": 12, "environment": "production"} not in legs
    assert not [leg for leg in legs if leg["os"] == "win" and leg["version"] == 16]
    assert legs[0] == {"os": "mac", "version": 12, "environment": "staging"}


def test_exclude_compares_objects_and_arrays_deeply():
    matrix = {
        "cfg": [{"os": "linux", "flags": ["-O2"]}, {"os": "linux", "flags": ["-O0"]}],
        "py": ["3.11"],
        "exclude": [{"cfg": {"os": "linux", "flags": ["-O0"]}}],
    }
    assert expand_matrix(matrix) == [{"cfg": {"os": "linux", "flags": ["-O2"]}, "py": "3.11"}]


def test_exclude_keeps_booleans_apart_from_numbers():
    matrix = {"flag": [True, 1], "exclude": [{"flag": 1}]}
    assert expand_matrix(matrix) == [{"flag": True}]


def test_include_extends_matching_combinations_and_adds_the_rest():
    # The documented fruit/animal walk-through, with our own values.
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert expand_matrix(matrix) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_include_adds_a_key_to_one_combination():
    matrix = {"os": ["win", "linux"], "node": [14, 16], "include": [{"os": "win", "node": 16, "npm": 6}]}
    assert expand_matrix(matrix) == [
        {"os": "win", "node": 14},
        {"os": "win", "node": 16, "npm": 6},
        {"os": "linux", "node": 14},
        {"os": "linux", "node": 16},
    ]


def test_include_never_overwrites_an_original_value():
    matrix = {"os": ["linux"], "include": [{"os": "mac", "extra": 1}]}
    assert expand_matrix(matrix) == [{"os": "linux"}, {"os": "mac", "extra": 1}]


def test_include_is_processed_after_exclude():
    matrix = {"os": ["linux", "mac"], "exclude": [{"os": "mac"}], "include": [{"os": "mac", "x": 1}]}
    assert expand_matrix(matrix) == [{"os": "linux"}, {"os": "mac", "x": 1}]


def test_include_only_matrix_gives_one_leg_per_entry():
    matrix = {"include": [{"site": "prod", "dc": "a"}, {"site": "staging", "dc": "b"}]}
    assert expand_matrix(matrix) == [{"site": "prod", "dc": "a"}, {"site": "staging", "dc": "b"}]


def test_keys_of_include_and_exclude_entries_are_case_insensitive():
    matrix = {
        "os": ["a", "b"],
        "exclude": [{"OS": "a"}],
        "include": [{"Os": "b", "extra": "x"}, {"OS": "b", "EXTRA": "y"}],
    }
    assert expand_matrix(matrix) == [{"os": "b", "extra": "y"}]


def test_object_and_array_values_are_kept_and_copied():
    shared = {"name": "x", "tags": ["a"]}
    legs = expand_matrix({"target": [shared, [1, 2]]})
    assert legs == [{"target": shared}, {"target": [1, 2]}]
    legs[0]["target"]["tags"].append("b")
    assert shared == {"name": "x", "tags": ["a"]}


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({}, "at least one vector"),
        ({"exclude": [{"os": "x"}]}, "at least one vector"),
        ({"os": []}, "'os' does not contain any values"),
        ({"os": "ubuntu"}, "'os' must be an array"),
        ({"os": "${{ fromJSON(needs.a.outputs.m) }}"}, "evaluate it before"),
        ({"os": ["a"], "exclude": [{"arch": "x"}]}, "exclude key 'arch'"),
        ({"os": ["a"], "exclude": [{"os": "a"}]}, "removed every combination"),
        ({"os": ["a"], "include": {"os": "b"}}, "'include' must be an array"),
        ({"os": ["a"], "include": ["b"]}, "'include' entry 0 must be a mapping"),
        ([["os"]], "must be a mapping"),
    ],
)
def test_invalid_matrices_are_refused_with_a_reason(matrix, message):
    with pytest.raises(MatrixError, match=message):
        expand_matrix(matrix)


def test_matrix_error_is_a_value_error():
    assert issubclass(MatrixError, ValueError)


def test_job_limit_counts_includes_and_excludes():
    assert len(expand_matrix({"n": list(range(256))})) == 256
    with pytest.raises(MatrixError, match="at most 256"):
        expand_matrix({"n": list(range(256)), "include": [{"n": "new"}]})
    legs = expand_matrix({"a": list(range(20)), "b": list(range(20)), "exclude": [{"a": i} for i in range(8)]})
    assert len(legs) == 240
    assert len(expand_matrix({"n": list(range(10))}, max_jobs=10)) == 10
    with pytest.raises(MatrixError, match="at most 9"):
        expand_matrix({"n": list(range(10))}, max_jobs=9)


def test_a_huge_matrix_is_refused_quickly_without_building_it():
    matrix = {"a": list(range(100)), "b": list(range(100))}
    gc.collect()
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(MatrixError, match="at most 256"):
        expand_matrix(matrix)
    elapsed = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.1
    assert peak < 1_000_000
    astronomical = {f"k{i}": list(range(10)) for i in range(30)}
    with pytest.raises(MatrixError):
        expand_matrix(astronomical)


@pytest.mark.parametrize(
    ("matrix", "late"),
    [
        ({"os": ["a"]}, False),
        ({"os": "${{ fromJSON(needs.a.outputs.m) }}"}, True),
        ({"os": ["a", {"deep": ["x ${{ inputs.v }}"]}]}, True),
        ({"include": "${{ fromJSON(x) }}"}, True),
        ("${{ fromJSON(needs.a.outputs.matrix) }}", True),
        ({"n": [1, None, True]}, False),
    ],
)
def test_matrix_needs_late_evaluation(matrix, late):
    assert matrix_needs_late_evaluation(matrix) is late


@pytest.mark.parametrize(
    ("name", "combination", "expected"),
    [
        ("build", {"os": "ubuntu", "node": 18}, "build (ubuntu, 18)"),
        ("build", {"node": 18, "os": "ubuntu"}, "build (18, ubuntu)"),
        ("Build it", {"py": "3.10"}, "Build it (3.10)"),
        ("t", {"py": 3.5, "flag": True, "off": False}, "t (3.5, true, false)"),
        ("t", {"n": 2.0}, "t (2)"),
        ("t", {"cfg": {"os": "linux", "cc": "gcc"}, "v": 1}, "t (linux, gcc, 1)"),
        ("t", {"list": ["a", ["b", "c"]]}, "t (a, b, c)"),
        ("t", {"a": None, "b": "", "c": "x"}, "t (x)"),
        ("t", {}, "t"),
        ("t", {"a": None}, "t"),
        ("Test on ${{ matrix.os }}", {"os": "ubuntu"}, "Test on ${{ matrix.os }}"),
        ("Test ${{ github.ref }}", {"os": "ubuntu"}, "Test ${{ github.ref }} (ubuntu)"),
    ],
)
def test_matrix_job_name(name, combination, expected):
    assert matrix_job_name(name, combination) == expected


def test_matrix_job_name_flag_overrides_the_check():
    assert matrix_job_name("Test on ubuntu", {"os": "ubuntu"}, uses_matrix=True) == "Test on ubuntu"
    assert matrix_job_name("${{ matrix.os }}", {"os": "x"}, uses_matrix=False) == "${{ matrix.os }} (x)"


@pytest.mark.parametrize(
    ("name", "uses"),
    [
        ("${{ matrix.os }}", True),
        ("Test ${{matrix.os}} and more", True),
        ("${{ format('{0}-{1}', matrix.os, matrix['node']) }}", True),
        ("${{ MATRIX.os }}", True),
        ("${{ toJSON(matrix) }}", True),
        ("matrix build", False),
        ("${{ github.matrix }}", False),
        ("${{ matrixish }}", False),
        ("${{ github.ref }} matrix.os", False),
        (None, False),
    ],
)
def test_name_uses_matrix(name, uses):
    assert name_uses_matrix(name) is uses


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))


@given(
    st.dictionaries(st.sampled_from("abcd"), st.lists(scalars, min_size=1, max_size=3), min_size=1),
    st.lists(st.dictionaries(st.sampled_from("abcde"), scalars, max_size=3), max_size=4),
)
def test_every_original_leg_survives_includes_unchanged_in_its_vector_keys(vectors, includes):
    legs = expand_matrix({**vectors, "include": includes}, max_jobs=10_000)
    originals = expand_matrix(vectors, max_jobs=10_000)
    for original, leg in zip(originals, legs, strict=False):
        assert {key: leg[key] for key in vectors} == original
    assert len(originals) <= len(legs) <= len(originals) + len(includes)
