"""OnlyStream: feed an Avalanche PluginMetric only the evaluations of one stream."""

from __future__ import annotations

from avalanche.evaluation import PluginMetric


def _stream_name(strategy) -> str | None:
    exp = getattr(strategy, "experience", None)
    if exp is None:
        stream = getattr(strategy, "current_eval_stream", None) or ()
        exp = next(iter(stream), None)
    origin = getattr(exp, "origin_stream", None)
    return getattr(origin, "name", None)


class OnlyStream(PluginMetric):
    """Wraps a metric so that its eval callbacks see only ``stream`` evaluations.

    Avalanche's forgetting and BWT metrics key their state by experience id
    only. With early stopping, validation passes run between test passes and
    would overwrite the "initial" and "last" accuracies with validation
    scores; this wrapper keeps those metrics on the test stream, as defined.
    Training callbacks always pass through.
    """

    def __init__(self, metric: PluginMetric, *, stream: str = "test"):
        super().__init__()
        self.metric = metric
        self.stream = stream

    def result(self):
        return self.metric.result()

    def reset(self):
        return self.metric.reset()

    def __str__(self) -> str:
        return str(self.metric)


def _forward(name: str):
    is_eval = "eval" in name

    def callback(self, strategy, *args, **kwargs):
        if is_eval and _stream_name(strategy) != self.stream:
            return None
        return getattr(self.metric, name)(strategy, *args, **kwargs)

    callback.__name__ = name
    return callback


for _name in dir(PluginMetric):
    if _name.startswith(("before_", "after_")):
        setattr(OnlyStream, _name, _forward(_name))
del _name
