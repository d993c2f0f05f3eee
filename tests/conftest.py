import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Fixed seeds, so any test that draws random numbers is repeatable."""
    np.random.seed(0)
    torch.manual_seed(0)
