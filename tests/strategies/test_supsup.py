import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.powerprop import stored_weight
from strategies.subnet_model import SubnetTaskNetwork
from strategies.supsup import SupSup


def model(method: str = "supsup") -> SubnetTaskNetwork:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32))
    return SubnetTaskNetwork(backbone=backbone, method=method)


def test_supsup_never_changes_a_weight_and_forgets_nothing(stock_benchmark):
    network = model()
    weights = {name: stored_weight(layer) for name, layer in network.layers.items()}
    before = {name: weight.detach().clone() for name, weight in weights.items()}
    strategy = SupSup(
        model=network,
        optimizer=torch.optim.AdamW(network.parameters(), lr=1e-2, weight_decay=0.1),
        train_mb_size=32, train_epochs=2, evaluator=EvaluationPlugin(loggers=[]),
    )  # fmt: skip
    probe = torch.stack([stock_benchmark.test_stream[0].dataset[i][0] for i in range(16)])
    logits = []
    for experience in stock_benchmark.train_stream[:3]:
        strategy.train(experience, eval_streams=[])
        network.eval()
        with torch.no_grad():
            logits.append(network(probe, 0))
    assert all(torch.equal(later, logits[0]) for later in logits[1:])
    for name, weight in weights.items():
        assert torch.equal(weight, before[name]), name
    reports = strategy.subnet.reports
    assert [r.selected_fraction for r in reports] == [pytest.approx(0.5, abs=1e-3)] * 3


def test_supsup_defaults_to_its_papers_split_cifar_setting():
    strategy = SupSup(model=model(), evaluator=EvaluationPlugin(loggers=[]))
    assert (strategy.train_mb_size, strategy.train_epochs) == (128, 100)
    assert isinstance(strategy.optimizer, torch.optim.Adam)
    assert strategy.optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="method='supsup'"):
        SupSup(model=model("wsn"))
