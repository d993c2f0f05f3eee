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


@pytest.fixture(scope="module")
def emnist_app_env(tmp_path_factory):
    """The app's settings for a module of AppTests on real characters: LENET_HOME in tmp, the shipped EMNIST
    subset and source net, one worker."""
    from lenet.core import checkpoint
    from lenet.data.emnist import SUBSET_DIR
    mp = pytest.MonkeyPatch()
    mp.setenv("LENET_HOME", str(tmp_path_factory.mktemp("home")))
    mp.setenv("LENET_DATA", str(SUBSET_DIR))
    mp.setenv("LENET_SOURCE", str(checkpoint.shipped("emnist")))
    mp.setenv("LENET_WORKERS", "1")
    yield
    mp.undo()
