import io

import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.hat_masks import hat_capacity
from strategies.hat import HAT, HatLrPlugin, HatPlugin
from strategies.hat_model import HatNetwork


def backbone() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU())


def first_inputs(experience) -> torch.Tensor:
    return torch.stack([experience.dataset[i][0] for i in range(32)])


def hat(**options) -> HAT:
    torch.manual_seed(0)
    options.setdefault("evaluator", EvaluationPlugin(loggers=[]))
    return HAT(model=HatNetwork(backbone=backbone()), train_epochs=3, **options)


def test_a_stock_benchmark_needs_one_model_and_one_strategy(stock_benchmark):
    strategy = hat()
    model = strategy.model
    test_stream = stock_benchmark.test_stream
    seen = []
    for task, experience in enumerate(list(stock_benchmark.train_stream)[:3]):
        strategy.train(experience, eval_streams=[])
        model.eval()
        with torch.no_grad():
            seen.append([model(first_inputs(test_stream[j]), j) for j in range(task + 1)])
        for earlier in range(task):  # near zero by design (gates not exactly 0/1)
            drift = (seen[-1][earlier] - seen[earlier][earlier]).abs().max().item()
            assert drift < 1e-3 * seen[earlier][earlier].abs().max().item()
    assert model.trained_tasks == 3
    assert [head.out_features for head in model.heads] == [2] * 3
    assert strategy.hat.capacity[-1] == pytest.approx(hat_capacity(model))
    assert strategy.hat.capacity == sorted(strategy.hat.capacity)
    assert set(strategy.schedule.epochs_trained) == {0, 1, 2}
    # HAT's default optimizer: plain SGD at lr 0.05, reset to it at each task.
    assert type(strategy.optimizer) is torch.optim.SGD
    assert strategy.optimizer.param_groups[0]["lr"] <= 0.05


def test_the_plugins_state_is_plain_data_for_weights_only_checkpoints(stock_benchmark):
    strategy = hat()
    strategy.train(stock_benchmark.train_stream[0], eval_streams=[])
    buffer = io.BytesIO()
    torch.save(
        {"model": strategy.model.state_dict(), "hat": strategy.hat.state_dict(),
         "schedule": strategy.schedule.state_dict()},
        buffer,
    )  # fmt: skip
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = hat()
    resumed.hat.load_state_dict(saved["hat"])
    resumed.schedule.load_state_dict(saved["schedule"])
    resumed.model.add_head(2, example=first_inputs(stock_benchmark.test_stream[0]))
    resumed.model.load_state_dict(saved["model"])
    resumed.model.eval()
    strategy.model.eval()
    x = first_inputs(stock_benchmark.test_stream[0])
    assert torch.equal(resumed.model(x, 0), strategy.model(x, 0))
    assert resumed.hat.capacity == strategy.hat.capacity
    assert resumed.schedule.epochs_trained == strategy.schedule.epochs_trained


def test_the_plugins_work_in_a_custom_template(stock_benchmark):
    torch.manual_seed(0)
    model = HatNetwork(backbone=backbone())
    plugin = HatPlugin()
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        train_epochs=2,
        plugins=[HatLrPlugin(), plugin],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    for experience in list(stock_benchmark.train_stream)[:2]:
        strategy.train(experience, eval_streams=[])
    assert model.trained_tasks == 2
    assert len(plugin.capacity) == 2


def test_bad_options_and_models_are_refused():
    with pytest.raises(ValueError, match="HAT trains a strategies.HatNetwork"):
        HAT(model=nn.Linear(2, 2))
    with pytest.raises(ValueError, match="lr_factor > 1"):
        HatLrPlugin(lr_factor=1.0)
    with pytest.raises(ValueError, match="c must be ≥ 0"):
        HatPlugin(c=-0.5)
