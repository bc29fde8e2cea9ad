"""Per-iteration callbacks dispatched only to the plugins that do something on them.

Avalanche's templates call every plugin on every callback (`trigger_plugins`), and its
`EvaluationPlugin` answers each call by wrapping the experience in a logging view and asking
every metric and logger, even when none of them acts on that callback: eight calls per plugin
per training step, about half of a small network's step. Which plugin acts on which callback
is known from its class, so the listeners of each per-iteration callback are found once per
epoch (training) and per experience (evaluation), and only they are called.
"""

from __future__ import annotations

from avalanche.core import BaseSGDPlugin
from avalanche.evaluation.metric_definitions import GenericPluginMetric, PluginMetric
from avalanche.training.plugins import EvaluationPlugin

__all__ = [
    "EVAL_ITERATION_EVENTS",
    "TRAINING_ITERATION_EVENTS",
    "ListenedCallbacks",
    "listeners",
    "listens",
]

TRAINING_ITERATION_EVENTS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)
"""Callbacks fired on every training step."""

EVAL_ITERATION_EVENTS = (
    "before_eval_iteration",
    "before_eval_forward",
    "after_eval_forward",
    "after_eval_iteration",
)
"""Callbacks fired on every evaluation step."""


def _overrides(obj: object, event: str) -> bool:
    """Whether `obj`'s class implements `event` beyond Avalanche's no-op defaults."""
    method = getattr(type(obj), event, None)
    return method is not None and method not in (
        getattr(BaseSGDPlugin, event, None),
        getattr(PluginMetric, event, None),
    )


def _generic_metric_listens(metric: GenericPluginMetric, event: str) -> bool:
    """Avalanche's GenericPluginMetric acts on training steps only in mode "train", on
    evaluation steps only in mode "eval" (its own implementations return at once otherwise);
    a subclass that overrides the callback is taken at its word."""
    if getattr(type(metric), event) is not getattr(GenericPluginMetric, event, None):
        return _overrides(metric, event)
    mode = "eval" if event in EVAL_ITERATION_EVENTS else "train"
    return metric._mode == mode and _overrides(metric, event)


def listens(plugin: object, event: str) -> bool:
    """Whether calling `plugin` on `event` can do anything.

    An EvaluationPlugin listens when it is active and one of its metrics or loggers acts on
    the event; other plugins when their class overrides it.
    """
    if isinstance(plugin, EvaluationPlugin):
        return plugin.active and (
            any(listens(metric, event) for metric in plugin.metrics)
            or any(_overrides(logger, event) for logger in plugin.loggers)
        )
    if isinstance(plugin, GenericPluginMetric):
        return _generic_metric_listens(plugin, event)
    return _overrides(plugin, event)


def listeners(plugins: list, events: tuple[str, ...]) -> dict[str, list]:
    """For each event, the plugins that listen to it, in the strategy's order."""
    return {event: [p for p in plugins if listens(p, event)] for event in events}


class ListenedCallbacks:
    """Mixin for an Avalanche SGD template (put it first among the bases): per-iteration
    callbacks go only to the plugins that `listens` finds, found again at the start of each
    training epoch and of each evaluated experience (a plugin added in the middle of an
    epoch is heard from the next one). Every other callback goes to every plugin, as in
    Avalanche."""

    def __init__(self, *args, **kwargs) -> None:
        self._listeners: dict[str, list] = {}
        """The plugins that listen to each per-iteration event."""
        super().__init__(*args, **kwargs)

    def _before_training_epoch(self, **kwargs) -> None:
        self._listeners.update(listeners(self.plugins, TRAINING_ITERATION_EVENTS))
        super()._before_training_epoch(**kwargs)

    def _before_eval_exp(self, **kwargs) -> None:
        # An evaluation inside training (Avalanche's periodic eval) keeps the training
        # events' listeners: the two sets of events do not overlap.
        self._listeners.update(listeners(self.plugins, EVAL_ITERATION_EVENTS))
        super()._before_eval_exp(**kwargs)

    def _dispatch(self, event: str, **kwargs) -> None:
        for plugin in self._listeners[event]:
            getattr(plugin, event)(self, **kwargs)

    def _before_training_iteration(self, **kwargs) -> None:
        self._dispatch("before_training_iteration", **kwargs)

    def _before_forward(self, **kwargs) -> None:
        self._dispatch("before_forward", **kwargs)

    def _after_forward(self, **kwargs) -> None:
        self._dispatch("after_forward", **kwargs)

    def _before_backward(self, **kwargs) -> None:
        self._dispatch("before_backward", **kwargs)

    def _after_backward(self, **kwargs) -> None:
        self._dispatch("after_backward", **kwargs)

    def _before_update(self, **kwargs) -> None:
        self._dispatch("before_update", **kwargs)

    def _after_update(self, **kwargs) -> None:
        self._dispatch("after_update", **kwargs)

    def _after_training_iteration(self, **kwargs) -> None:
        self._dispatch("after_training_iteration", **kwargs)

    def _before_eval_iteration(self, **kwargs) -> None:
        self._dispatch("before_eval_iteration", **kwargs)

    def _before_eval_forward(self, **kwargs) -> None:
        self._dispatch("before_eval_forward", **kwargs)

    def _after_eval_forward(self, **kwargs) -> None:
        self._dispatch("after_eval_forward", **kwargs)

    def _after_eval_iteration(self, **kwargs) -> None:
        self._dispatch("after_eval_iteration", **kwargs)
