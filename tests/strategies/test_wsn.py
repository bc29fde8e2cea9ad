import io

import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.powerprop import stored_weight
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.subnet_model import SubnetTaskNetwork
from strategies.subnet_plugin import SubnetPlugin
from strategies.wsn import WSN


def model(method: str = "wsn", density: float = 0.3) -> SubnetTaskNetwork:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU())
    return SubnetTaskNetwork(backbone=backbone, method=method, density=density)


def first_inputs(experience, count: int = 16) -> torch.Tensor:
    return torch.stack([experience.dataset[i][0] for i in range(count)])


def test_wsn_forgets_nothing_and_each_task_selects_c_of_the_weights(stock_benchmark):
    network = model()
    strategy = WSN(
        model=network, train_mb_size=32, train_epochs=2, evaluator=EvaluationPlugin(loggers=[])
    )
    probe = first_inputs(stock_benchmark.test_stream[0])
    logits = []
    for experience in stock_benchmark.train_stream[:3]:
        strategy.train(experience, eval_streams=[])
        network.eval()
        with torch.no_grad():
            logits.append(network(probe, 0))
    assert all(torch.equal(later, logits[0]) for later in logits[1:])
    assert [head.out_features for head in network.heads] == [2, 2, 2]
    reports = strategy.subnet.reports
    assert [r.selected_fraction for r in reports] == [pytest.approx(0.3, abs=1e-3)] * 3
    assert reports[-1].cap == pytest.approx((1 - reports[-1].free_fraction) + 3 / 32)
    assert isinstance(strategy.optimizer, torch.optim.Adam)  # the paper's, lr 1e-3
    assert strategy.optimizer.param_groups[0]["lr"] == 1e-3


def test_the_plugin_state_loads_with_weights_only(stock_benchmark):
    strategy = WSN(model=model(), train_mb_size=32, train_epochs=1,
                   evaluator=EvaluationPlugin(loggers=[]))  # fmt: skip
    strategy.train(stock_benchmark.train_stream[0], eval_streams=[])
    buffer = io.BytesIO()
    torch.save(strategy.subnet.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = SubnetPlugin()
    restored.load_state_dict(state)
    assert restored.reports == strategy.subnet.reports
    restored.attach(strategy.model)
    generators = [p.trainer.state_dict()["generator"] for p in (restored, strategy.subnet)]
    assert torch.equal(*generators)


def test_a_patience_stops_on_a_held_out_share(stock_benchmark):
    strategy = WSN(model=model(), train_mb_size=32, train_epochs=3, patience=1,
                   evaluator=EvaluationPlugin(loggers=[]))  # fmt: skip
    assert any(isinstance(p, PlateauBudgetPlugin) for p in strategy.plugins)
    strategy.train(stock_benchmark.train_stream[0], eval_streams=[])
    assert strategy.model.trained_tasks == 1


def test_the_plugin_serves_a_template_of_ones_own(stock_benchmark):
    network = model()
    plugin = SubnetPlugin()
    strategy = Naive(
        model=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3),
        train_mb_size=32, train_epochs=1, plugins=[plugin], evaluator=EvaluationPlugin(loggers=[]),
    )  # fmt: skip
    strategy.train(stock_benchmark.train_stream[0], eval_streams=[])
    used = network.used_masks()["1"]
    before = stored_weight(network.layers["1"]).detach().clone()
    for experience in stock_benchmark.train_stream[1:3]:
        strategy.train(experience, eval_streams=[])
    after = stored_weight(network.layers["1"])
    assert torch.equal(after[used], before[used])
    assert not torch.equal(after, before)
    assert len(plugin.reports) == 3


def test_a_model_of_another_kind_is_named():
    with pytest.raises(ValueError, match=r"SubnetTaskNetwork\(backbone=..., method='wsn'\)"):
        WSN(model=model("supsup"))
    with pytest.raises(ValueError, match="patience must be a positive number"):
        WSN(model=model(), patience=0)
