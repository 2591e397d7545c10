import os
from pathlib import Path

import pytest
import torch

import bbtkit as bk
from bbtkit.data.splits import Example, Examples

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "BBTKIT_DATA" not in os.environ and SHARED.exists():
    os.environ["BBTKIT_DATA"] = str(SHARED)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def toy():
    """Examples of different lengths, so that padding matters."""
    rows = [("a good movie , great acting and a fun story", 1), ("bad", 0), ("the film was boring", 0),
            ("i love this film", 1), ("the worst plot of all , the acting was awful and the story dull", 0)]
    return Examples([Example(t, None, y) for t, y in rows], name="toy")


@pytest.fixture(scope="session")
def toy_pairs():
    rows = [("the man went to the city", "a man is in the city", 0), ("a dog", "a cat", 2),
            ("the team won the game", "the team is good and the players are good", 1)]
    return Examples([Example(a, b, y) for a, b, y in rows], name="toy-pairs")


@pytest.fixture(scope="session", params=bk.model.load.TINY)
def tiny(request):
    return bk.tiny_model(request.param)


@pytest.fixture(scope="session")
def embedded():
    return bk.load_model()


def pytest_report_header(config):
    """Which dtype and CPU features this run used, so that a failure report says where it came from."""
    return "bbtkit: " + bk.runtime.describe()
