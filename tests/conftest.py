import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Fixed seeds, so any test that draws random numbers is repeatable."""
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def autograd_nodes():
    """nodes(out) -> the names of every autograd node behind `out` (which Functions ran)."""
    def nodes(out: torch.Tensor) -> set[str]:
        seen, todo = {}, [out.grad_fn]
        while todo:
            f = todo.pop()
            if f is not None and id(f) not in seen:
                seen[id(f)] = type(f).__name__
                todo += [g for g, _ in f.next_functions]
        return set(seen.values())
    return nodes
