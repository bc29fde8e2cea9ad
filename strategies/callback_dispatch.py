"""Per-iteration callbacks dispatched only to the plugins that do something on them.

Avalanche's templates call every plugin on every callback (`trigger_plugins`), and its
`EvaluationPlugin` answers each call by wrapping the experience in a logging view and asking
every metric and logger, even when none of them acts on that callback: eight calls per plugin
per training step, about half of a small network's step. Which plugin acts on which callback
is known from its class, so the listeners of each per-iteration callback are found once per
epoch (training) and per experience (evaluation), and only they are called. A plugin whose
callbacks cannot be read from its class (not one of Avalanche's plugin classes, callbacks set
on the instance or served by `__getattr__`) hears every callback, as in Avalanche; a callback
this module does not list goes through Avalanche's own dispatch.
"""

from __future__ import annotations

from avalanche.core import BaseSGDPlugin
from avalanche.evaluation.metric_definitions import GenericPluginMetric, PluginMetric
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.utils import trigger_plugins

from strategies.avalanche_compat import (
    EVAL_ITERATION_EVENTS,
    TRAINING_ITERATION_EVENTS,
    metric_mode,
    template_hook,
)

__all__ = [
    "EVAL_ITERATION_EVENTS",
    "TRAINING_ITERATION_EVENTS",
    "ListenedCallbacks",
    "listeners",
    "listens",
]


def _overrides(obj: object, event: str) -> bool:
    """Whether `obj`'s class implements `event` beyond Avalanche's no-op defaults."""
    method = getattr(type(obj), event, None)
    return method is not None and method not in (
        getattr(BaseSGDPlugin, event, None),
        getattr(PluginMetric, event, None),
    )


def _opaque(obj: object, event: str) -> bool:
    """Whether `obj`'s class cannot say if it acts on `event`: a plugin of no Avalanche
    plugin class, a callback set on the instance, or attributes served by `__getattr__`."""
    return (
        not isinstance(obj, BaseSGDPlugin | PluginMetric)
        or event in getattr(obj, "__dict__", {})
        or hasattr(type(obj), "__getattr__")
    )


def _generic_metric_listens(metric: GenericPluginMetric, event: str) -> bool:
    """A GenericPluginMetric acts on training steps only in mode "train", on evaluation
    steps only in mode "eval"; a subclass that overrides the callback is taken at its word."""
    if getattr(type(metric), event) is not getattr(GenericPluginMetric, event, None):
        return _overrides(metric, event)
    phase = "eval" if event in EVAL_ITERATION_EVENTS else "train"
    return metric_mode(metric) == phase and _overrides(metric, event)


def listens(plugin: object, event: str) -> bool:
    """Whether calling `plugin` on `event` can do anything.

    Avalanche's EvaluationPlugin (not a subclass, which may act on its own) listens when
    it is active and one of its metrics or loggers acts on the event; other plugins when
    their class overrides it, or when it cannot be told (`_opaque`: then whenever it has
    the callback, as Avalanche calls every plugin).
    """
    if type(plugin) is EvaluationPlugin:
        return plugin.active and (
            any(listens(metric, event) for metric in plugin.metrics)
            or any(hasattr(logger, event) and listens(logger, event) for logger in plugin.loggers)
        )
    if _opaque(plugin, event):
        return hasattr(plugin, event)
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
    Avalanche, and so does a per-iteration one fired before its listeners were found."""

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
        found = self._listeners.get(event)
        if found is None:
            trigger_plugins(self, event, **kwargs)
            return
        for plugin in found:
            getattr(plugin, event)(self, **kwargs)


def _dispatching(event: str):
    def hook(self: ListenedCallbacks, **kwargs) -> None:
        self._dispatch(event, **kwargs)

    hook.__name__ = hook.__qualname__ = template_hook(event)
    hook.__doc__ = f"Fires {event} to its listeners only."
    return hook


for _event in TRAINING_ITERATION_EVENTS + EVAL_ITERATION_EVENTS:
    setattr(ListenedCallbacks, template_hook(_event), _dispatching(_event))
