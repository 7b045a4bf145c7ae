"""seqlab.gradient_check.check_float32 (given helper of the notebooks' check cells)."""
import numpy as np
import pytest

from seqlab.gradient_check import check_float32


def test_check_float32_passes_float32_arrays(capsys):
    check_float32("f", {"out": np.zeros(2, np.float32), "dx": np.ones((2, 3), np.float32)})
    assert capsys.readouterr().out == "[OK ] f: float32 in -> float32 out (out, dx)\n"


def test_check_float32_names_every_wrong_output_and_the_cause():
    outputs = {"h": np.zeros(2, np.float32), "dx": np.zeros(2), "db": 1.0,
               "dW": np.zeros(2, np.float16)}
    with pytest.raises(AssertionError) as err:
        check_float32("g", outputs)
    msg = str(err.value)
    assert "dx is float64, db is float, dW is float16" in msg and "h is" not in msg
    assert "np.sqrt(H)" in msg and "np.zeros(shape)" in msg and "Python float" in msg
