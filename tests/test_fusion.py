"""Fusion as pure functions."""

import numpy as np
import pytest

from search import fusion


def test_minmax_never_divides_by_zero():
    assert fusion.minmax(np.array([])).size == 0
    np.testing.assert_array_equal(fusion.minmax(np.array([0.7])), [1.0])
    np.testing.assert_array_equal(fusion.minmax(np.array([2.0, 2.0])), [1.0, 1.0])
    np.testing.assert_allclose(fusion.minmax(np.array([1.0, 3.0, 2.0])), [0.0, 1.0, 0.5])


def test_zero_weight_keeps_the_dense_order():
    dense = np.array([0.9, 0.8, 0.7])
    lexical = np.array([0.0, 5.0, 9.0])
    fused = fusion.combine(dense, lexical, 0.0)
    assert list(np.argsort(-fused)) == [0, 1, 2]


def test_lexical_weight_can_reorder():
    dense = np.array([0.82, 0.81, 0.5])
    lexical = np.array([0.0, 9.0, 1.0])
    assert np.argmax(fusion.combine(dense, lexical, 0.5)) == 1
    with pytest.raises(ValueError):
        fusion.combine(dense, lexical, 1.5)


def test_coverage_and_weight():
    idf = {"黑豹": 5.0, "防守": 3.0, "的": 0.1}
    assert fusion.coverage(idf, set()) == 0.0
    assert fusion.coverage(idf, set(idf)) == pytest.approx(1.0)
    assert fusion.coverage({}, set()) == 0.0
    assert fusion.lexical_weight(0.0) == 0.0
    assert fusion.lexical_weight(1.0) == pytest.approx(fusion.MAX_LEXICAL_WEIGHT)
    assert 0 < fusion.lexical_weight(0.6) < fusion.lexical_weight(0.9)
