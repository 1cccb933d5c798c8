"""Registry entries of the speed path's plugins (light: no torch).

Added by the builder and the runner themselves, configured by their own sections (``data:``,
``training.precision`` and the like), never named in a config; registered so that their
phases order them (:mod:`cfer.plugins.registry`):

- ``one_pass_evaluation`` (``evaluate``, inert): the runner's evaluator, Avalanche's
  ``EvaluationPlugin`` evaluating stream prefixes in one pass;
- ``throughput`` (``evaluate``, inert): training images per second;
- ``precision`` (``precision``, acts): autocast, channels-last, ``torch.compile`` (changes the
  arithmetic of every step);
- ``fast_data`` (``data``, acts): device-resident loaders; the same batches, but random
  augmentation draws from its own generator, so experience 0 trains on other draws than on
  the stock loader.
"""

from __future__ import annotations

from cfer.plugins.registry import register_plugin

register_plugin("one_pass_evaluation", path="cfer.plugins.speed.one_pass:OnePassEvaluationPlugin",
                phase="evaluate", first_experience="inert",
                description="Avalanche's EvaluationPlugin, stream prefixes evaluated in one pass")
register_plugin("throughput", path="cfer.plugins.speed.throughput:ThroughputPlugin", phase="evaluate",
                first_experience="inert", description="wall time and images per second of training")
register_plugin("precision", path="cfer.plugins.speed.precision:PrecisionPlugin", phase="precision",
                first_experience="acts", description="mixed precision, channels-last and torch.compile")
register_plugin("fast_data", path="cfer.plugins.speed.fast_data:FastDataPlugin", phase="data",
                first_experience="acts", description="loaders replaced by device-resident ones")
