"""matching's embedding check: a unit vector back, or EMBEDDING_INVALID for
any non-finite value or a zero norm (never the values in the refusal)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from identity_runtime.errors import InvalidArgument
from services.matching.contract import EmbeddingContract, validate_embedding

CONTRACT = EmbeddingContract("sface-2021dec", "1", 8)


def test_a_valid_embedding_comes_back_with_unit_norm() -> None:
    values = [3.0, 4.0, 0, 0, 0, 0, 0, 0]
    vector = validate_embedding("probe", CONTRACT, values, CONTRACT)
    assert vector.dtype == np.float32
    assert math.isclose(float(vector @ vector), 1.0, rel_tol=1e-6)
    assert vector[:2].tolist() == pytest.approx([0.6, 0.8])


@pytest.mark.parametrize(
    "bad",
    [
        [math.nan, 1, 0, 0, 0, 0, 0, 0],
        [math.inf, 1, 0, 0, 0, 0, 0, 0],
        [-math.inf, 1, 0, 0, 0, 0, 0, 0],
        [math.inf, -math.inf, 0, 0, 0, 0, 0, 0],
        [0.0] * 8,
        [3e38, 3e38, 0, 0, 0, 0, 0, 0],  # finite, but its norm is not in float32
    ],
)
def test_non_finite_values_and_a_zero_norm_are_refused(bad: list[float]) -> None:
    with pytest.raises(InvalidArgument) as caught, np.errstate(over="ignore"):
        validate_embedding("probe", CONTRACT, bad, CONTRACT)
    assert caught.value.reason == "EMBEDDING_INVALID"
    assert "3e+38" not in str(caught.value) and "inf" not in str(caught.value).lower()
