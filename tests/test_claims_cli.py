"""`virtbench claims` on the checked-in fixture run: JSON fields, policy, claim-level tally."""

from __future__ import annotations

import json
from pathlib import Path

from virtbench.cli import main

DATA = Path(__file__).parent / "data"
FIELDS = {"source", "claim_id", "family", "variant", "metric", "unit", "n", "median", "ci_low",
          "ci_high", "claimed_low", "claimed_high", "verdict", "comparable", "tallied",
          "reason"}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["claims", "--run-id", "fixture_run", "--datasets", str(DATA), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_claims_json_lines_claims_and_tally(capsys):
    code, out, _ = run(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["policy"] == {"min_n": 6, "margin": 0.05, "confidence": 0.95}
    assert doc["lines"] and FIELDS <= set(doc["lines"][0])
    for line in doc["lines"]:
        if line["tallied"]:
            exempt = line["unit"] in ("B", "") or line["metric"].endswith("_size vs docker/runc")
            assert exempt or line["n"] >= 6, line
            assert line["comparable"] == "yes"
    assert sum(doc["tally"].values()) == len(doc["claims"])
    assert {c["family"] for c in doc["claims"]} >= {"native", "wasm"}


def test_claims_min_n_is_a_parameter(capsys):
    _, strict, _ = run(capsys, "--json", "--min-n", "1000")
    decided = [ln for ln in json.loads(strict)["lines"]
               if ln["tallied"] and ln["unit"] not in ("B", "")]
    assert all(ln["metric"].endswith(" vs docker/runc") for ln in decided)


def test_claims_plain_output_and_source_filter(capsys):
    code, out, err = run(capsys, "--source", "lumos", "--all")
    assert code == 0
    assert "claims:" in out and "claim-family pairs" in out
    assert all(line.startswith("lumos:") for line in out.splitlines()[:-2] if line)
    assert "policy: n >= 6" in err


def test_claims_bad_input_is_a_clear_error(capsys):
    code, _, err = run(capsys, "--margin", "3")
    assert code == 2 and "margin must be in [0, 1)" in err
    code = main(["claims", "--run-id", "no-such-run", "--datasets", str(DATA)])
    assert code == 2 and "no dataset" in capsys.readouterr().err
