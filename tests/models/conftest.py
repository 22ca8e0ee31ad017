import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Line-model tests train small networks: one thread each keeps xdist workers apart."""
    torch.set_num_threads(1)
