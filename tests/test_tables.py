"""Report tables and the claims chart: human units, estimates joined with their CI, reasons
stated once, long tables folded, numbers kept as numbers until display (pure logic)."""

from __future__ import annotations

import math
import re

import matplotlib
import pandas as pd

from virtbench import claims, plots, tables

matplotlib.use("Agg")

KVM = "not available: KVM not usable here: /dev/kvm is absent (no hardware virtualization)"


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "variant": ["native/static", "docker/runc", "qemu-kvm/pc", "qemu-kvm/microvm"],
        "metric": ["rss", "startup", "startup", "startup"],
        "n": [8, 8, 0, 0],
        "median": [9732690.0, 4144.0, math.nan, math.nan],
        "ci_low": [9600000.0, 3998.0, math.nan, math.nan],
        "ci_high": [9900000.0, 4288.0, math.nan, math.nan],
        "unit": ["B", "ms", "ms", "ms"],
        "text": ["", "", KVM, KVM],
    })


def test_estimates_print_in_one_human_unit_with_their_ci():
    assert tables.estimate_text(9732690.0, 9.6e6, 9.9e6, "B", 8) == "9.28 [9.16, 9.44] MiB"
    assert tables.estimate_text(4144.0, 3998.0, 4288.0, "ms", 8) == "4.14 [4.00, 4.29] s"
    assert tables.estimate_text(0.83, 0.80, 0.91, "ms", 30) == "0.83 [0.80, 0.91] ms"
    # the unit follows the widest of the three numbers, not a median near zero
    assert tables.estimate_text(0.005, -1.9, 1.9, "MiB", 2).startswith("0.0 [-1.9, 1.9] MiB")
    assert "(range, n = 2: not a 95% CI)" in tables.estimate_text(0.005, -1.9, 1.9, "MiB", 2)
    assert tables.estimate_text(3.0, 2.0, 4.0, "ms", 3) == (
        "3.0 [2.0, 4.0] ms (range, n = 3: not a 95% CI)")
    assert tables.estimate_text(5.0, math.nan, math.nan, "ms", 1) == "5 ms (n=1, no CI)"
    assert tables.ratio_text(1.3217, 1.25, 1.40) == "1.32x [1.25, 1.40]"
    assert tables.range_text(1420.0, 1580.0, "ms") == "[1.42, 1.58] s"


def test_table_joins_estimates_and_states_each_reason_once():
    frame = _summary()
    before = frame.copy()
    html = tables.to_html(frame, "startup")
    pd.testing.assert_frame_equal(frame, before)  # the frame stays numeric and untouched
    assert "9.28 [9.16, 9.44] MiB" in html and "4.14 [4.00, 4.29] s" in html
    assert not re.search(r"\de[+-]\d", html)
    assert html.count("KVM not usable here") == 1  # one footnote for two rows
    assert html.count("not available [1]") == 2
    assert '<ol class="vb-notes"' in html
    assert "ci_low" not in html and ">unit<" not in html  # joined into one column


def test_numbers_right_text_left_through_the_styler():
    html = tables.to_html(_summary())
    cells = re.findall(r'<td id="[^"]+" class="([^"]*)" >([^<]*)</td>', html)
    by_text = {text: cls for cls, text in cells}
    assert "vb-num" in by_text["8"] and "vb-num" in by_text["9.28 [9.16, 9.44] MiB"]
    assert "vb-num" not in by_text["native/static"]
    assert "vb-na" in by_text["not available [1]"]
    assert re.search(r"#T_\w+ td \{[^}]*text-align: left", html)
    assert re.search(r"#T_\w+\s+td\.vb-num \{[^}]*text-align: right", html)


def test_long_tables_fold_and_short_ones_do_not():
    short = _summary()
    long = pd.concat([short] * 5, ignore_index=True)
    assert not tables.to_html(short, "four").startswith("<details")
    folded = tables.to_html(long, "twenty")
    assert folded.startswith('<details class="vb-details"><summary>twenty (20 rows)</summary>')
    assert plots.details_html("all of it", short).startswith("<details")


def test_columns_with_nothing_in_them_are_left_out():
    frame = _summary().assign(workload="", conditions=None)
    html = tables.to_html(frame)
    assert ">workload<" not in html and ">conditions<" not in html


def test_claims_table_keeps_numbers_as_numbers():
    check = pd.DataFrame([{
        "key": "seed:x", "claim_id": "seed:1", "source": "seed", "line": 1,
        "reference": "seed L1", "claim": "Docker startup", "claimed": "1.5 s", "unit": "ms",
        "claim_low": 1500.0, "claim_high": 1500.0, "tolerance_low": 1420.0,
        "tolerance_high": 1580.0, "conversion": "s x 1000 = ms", "variant": "docker/runc",
        "family": "docker", "workload": "", "conditions": "", "n": 8, "median": 253.5,
        "ci_low": 229.0, "ci_high": 279.0, "measured": "253 [229, 279] ms",
        "verdict": "lower than claimed", "comparable": "yes", "tallied": True, "reason": ""}])
    shown = claims.display_table(check)
    assert shown["median"].dtype == float and shown["tolerance_low"].dtype == float
    html = tables.to_html(shown)
    assert "254 [229, 279] ms" in html or "253 [229, 279] ms" in html
    assert "[1.42, 1.58] s" in html and 'class="data row0 col' in html


def test_claims_chart_has_one_row_per_claim_and_family_on_a_log_axis():
    rows = []
    for claim, family, variants, low, high, medians in (
            ("VM boot", "vm", ["qemu-tcg/pc", "qemu-tcg/microvm"], 30000.0, 30000.0,
             [4144.0, 1710.0]),
            ("Wasm start", "wasm", ["wasmtime-cli/jit", "node-wasi/v8", "wasmer/cranelift"],
             1.0, 10.0, [11.4, 2.8, 9.9])):
        for variant, median in zip(variants, medians, strict=True):
            rows.append(dict(claim_id=claim, claim=claim, family=family, variant=variant,
                             unit="ms", n=8, median=median, ci_low=median * 0.9,
                             ci_high=median * 1.1, claim_low=low, claim_high=high,
                             tallied=True))
    rows.append(dict(claim_id="KVM boot", claim="KVM boot", family="vm", variant="qemu-kvm/pc",
                     unit="ms", n=0, median=math.nan, ci_low=math.nan, ci_high=math.nan,
                     claim_low=1000.0, claim_high=1000.0, tallied=False))
    fig = plots.claims_chart(pd.DataFrame(rows), "claims")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["VM boot · vm (2 var.)", "Wasm start · wasm (3 var.)"]
    assert ax.get_xscale() == "log"
    empty = plots.claims_chart(pd.DataFrame(rows[-1:]), "nothing")
    assert any("not measured" in t.get_text() for a in empty.axes for t in a.texts)
