"""Agreement statistics: textbook values, parity with scikit-learn / statsmodels / krippendorff, explicit levels,
bootstrap CIs."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from pdg_eval.annotate.agreement import (Ratings, agreement, category_table, cohen_kappa, fleiss_kappa,
                                         krippendorff_alpha, pairwise_outcome, ratings_by_aspect)
from pdg_eval.errors import ConfigError


def ratings(matrix, domain=None) -> Ratings:
    matrix = np.asarray(matrix, dtype=float)
    domain = domain or sorted(set(matrix[np.isfinite(matrix)]))
    return Ratings(matrix, tuple(f"r{i}" for i in range(len(matrix))), tuple(range(matrix.shape[1])),
                   tuple(float(v) for v in domain))


def random_ratings(seed: int, raters: int = 4, units: int = 60, per_unit: int = 3, scale=(1, 2, 3, 4, 5)):
    rng = np.random.default_rng(seed)
    matrix = np.full((raters, units), np.nan)
    truth = rng.integers(0, len(scale), units)
    for u in range(units):
        for r in rng.choice(raters, per_unit, replace=False):
            matrix[r, u] = scale[int(np.clip(truth[u] + rng.integers(-1, 2), 0, len(scale) - 1))]
    return ratings(matrix, list(scale))


def test_cohen_textbook_example():
    # Cohen's kappa on Wikipedia's example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, kappa 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(ratings([a, b])).value == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_equals_sklearn_mean_over_pairs(weights, seed):
    data = random_ratings(seed)
    expected = []
    for i, j in itertools.combinations(range(4), 2):
        both = np.isfinite(data.values[i]) & np.isfinite(data.values[j])
        expected.append(cohen_kappa_score(data.values[i, both], data.values[j, both], labels=list(data.domain),
                                          weights=weights))
    got = cohen_kappa(data, weights)
    assert got.value == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert got.options["pairs"] == 6 and len(got.details["per_pair"]) == 6


def test_fleiss_textbook_example():
    # Fleiss (1971) via Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    matrix = np.array([np.repeat(np.arange(1, 6), row) for row in table]).T  # 14 raters x 10 subjects
    data = ratings(matrix, [1, 2, 3, 4, 5])
    result = fleiss_kappa(data)
    assert result.value == pytest.approx(0.20993, abs=5e-5)
    assert result.value == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)
    assert np.array_equal(category_table(data)[0], table)


@pytest.mark.parametrize("seed", [0, 3])
def test_fleiss_equals_statsmodels_and_drops_units_with_other_counts(seed):
    data = random_ratings(seed)
    matrix = data.values.copy()
    matrix[:, 0] = [1, 2, np.nan, np.nan]  # two ratings instead of three: left out
    data = Ratings(matrix, data.raters, data.units, data.domain)
    table = np.array([[np.sum(matrix[:, u] == c) for c in data.domain] for u in range(1, matrix.shape[1])])
    result = fleiss_kappa(data)
    assert result.value == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)
    assert result.options["units_left_out"] == 1 and result.n_units == matrix.shape[1] - 1


KRIPPENDORFF_EXAMPLE = [  # the krippendorff package's test data (Krippendorff's example with missing values)
    [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
    [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4]]


@pytest.mark.parametrize("level,expected", [("nominal", 0.691358), ("interval", 0.810845)])
def test_krippendorff_published_values(level, expected):
    assert krippendorff_alpha(ratings(KRIPPENDORFF_EXAMPLE), level).value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [0, 5])
def test_krippendorff_equals_library_with_explicit_level(level, seed):
    data = random_ratings(seed)
    expected = krippendorff.alpha(reliability_data=data.values, level_of_measurement=level,
                                  value_domain=list(data.domain))
    got = krippendorff_alpha(data, level)
    assert got.value == pytest.approx(expected, abs=1e-12)
    assert f"level:{level}" in got.signature


def test_levels_matter_and_are_required():
    data = random_ratings(7)
    values = {level: krippendorff_alpha(data, level).value for level in ("nominal", "ordinal", "interval")}
    assert len({round(v, 6) for v in values.values()}) == 3  # the level changes the number: it must be stated
    with pytest.raises(ConfigError, match="level of measurement"):
        krippendorff_alpha(data, "likert")


def test_bootstrap_cis_are_seeded_and_cover_the_estimate():
    data = random_ratings(11, units=80)
    first = agreement(data, "ordinal", resamples=300, seed=1)
    again = agreement(data, "ordinal", resamples=300, seed=1)
    other = agreement(data, "ordinal", resamples=300, seed=2)
    assert [a.statistic for a in first] == ["cohen_kappa", "fleiss_kappa", "krippendorff_alpha"]
    for a, b, c in zip(first, again, other):
        assert a.ci == b.ci and a.ci != c.ci
        assert a.ci[0] < a.value < a.ci[1]
        assert "resamples:300|seed:1" in a.signature
    assert first[0].options["weights"] == "quadratic"  # ordinal -> weighted Cohen
    assert agreement(data, "nominal", resamples=0)[0].options["weights"] == "none"


def test_perfect_and_undefined_agreement():
    perfect = ratings([[1, 2, 3, 1, 2], [1, 2, 3, 1, 2], [1, 2, 3, 1, 2]])
    assert all(a.value == pytest.approx(1.0) for a in agreement(perfect, "nominal", resamples=0))
    one_rater = ratings([[1, 2, 3, 1]])
    assert agreement(one_rater, "nominal", resamples=0) == []  # nothing to agree on: no statistic, no crash


def test_pairwise_answers_are_oriented_so_display_order_does_not_matter():
    assert pairwise_outcome("IDL", "ICL", "left") == pairwise_outcome("ICL", "IDL", "right") == -1.0
    assert pairwise_outcome("ICL", "IDL", "left") == 1.0 and pairwise_outcome("x", "y", "tie") == 0.0
    # two annotators who agree that IDL wins, shown in opposite orders, agree perfectly
    frame = pd.DataFrame({"item": ["1", "1", "2", "2", "3", "3"], "annotator": ["a", "b"] * 3,
                          "aspect": ["Persona"] * 6, "left": ["IDL", "ICL", "ICL", "ICL", "IDL", "IDL"],
                          "right": ["ICL", "IDL", "IDL", "IDL", "ICL", "ICL"],
                          "choice": ["left", "right", "right", "right", "tie", "tie"]})
    data = ratings_by_aspect(frame, "pairwise")["Persona"]
    assert data.values.tolist() == [[-1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]]
    assert krippendorff_alpha(data, "nominal").value == pytest.approx(1.0)
