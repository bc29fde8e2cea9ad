import torch
from torch import nn

from strategies.task_model import TaskNetwork


def network() -> TaskNetwork:
    torch.manual_seed(0)
    model = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU()))
    for _ in range(3):
        model.add_head(2, example=torch.zeros(1, 6))
    return model


def test_a_move_to_the_device_it_is_on_returns_at_once(monkeypatch):
    model = network()
    walked = []
    original = nn.Module._apply
    monkeypatch.setattr(
        nn.Module, "_apply", lambda self, *a, **k: walked.append(self) or original(self, *a, **k)
    )
    assert model.to("cpu") is model and model.to(torch.device("cpu")) is model
    assert walked == []
    model.to(torch.float64)  # anything else is nn.Module.to's
    assert walked and all(p.dtype == torch.float64 for p in model.parameters())
    model.to("meta")
    assert all(p.device.type == "meta" for p in model.parameters())
