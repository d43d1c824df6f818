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


def _all_notebooks():
    from virtbench.paths import notebooks_dir

    return sorted(notebooks_dir().rglob("*.ipynb"))


@pytest.mark.parametrize("path", _all_notebooks(), ids=lambda p: p.stem)
def test_every_parameter_is_typed_for_papermill_help(path):
    """`papermill --help-notebook` names each parameter's type (issue 24: no "Unknown type")."""
    import ast

    import papermill as pm

    params = pm.inspect_notebook(str(path))
    assert {"run_id", "quick", "variants", "min_n", "margin"} <= set(params)
    for name, p in params.items():
        assert p["inferred_type_name"] not in ("None", None), name
        # the annotation matches the default's type
        default = ast.literal_eval(p["default"])
        assert type(default).__name__ == p["inferred_type_name"], (name, p)
