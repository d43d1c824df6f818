"""Notebook parameters are checked before anything is read (issue 26)."""

from __future__ import annotations

import pytest

from virtbench.notebook import check_parameters

GOOD = dict(run_id="reference", datasets="", variants=[], quick=False, min_n=6, margin=0.05)


@pytest.mark.parametrize(("name", "value", "said"), [
    ("min_n", "abc", "notebook parameter min_n = 'abc': an integer of at least 2"),
    ("min_n", 1, "at least 2"),
    ("margin", "high", "notebook parameter margin = 'high': a number in [0, 1)"),
    ("quick", "maybe", "notebook parameter quick = 'maybe': True or False"),
    ("variants", "native", "a list of variant names or patterns"),
    ("variants", ["wasmtme"], "no variant matches .wasmtme."),
    ("run_id", "../x", "invalid run id"),
    ("run_id", 3, "a run id (text)"),
    ("datasets", None, "a folder (text)"),
])
def test_a_bad_parameter_is_named_with_what_is_valid(name, value, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        check_parameters(**{**GOOD, name: value})


def test_good_parameters_pass():
    check_parameters(**GOOD)
    check_parameters(**{**GOOD, "variants": ["native", "docker/runc"], "run_id": "r@host",
                        "quick": True, "margin": 0})
