"""Registry entries of the plugins every strategy gets from the builder (light: no torch).

Registered so that their phases order them among a method's own plugins
(:mod:`cfer.plugins.registry`):

- ``schedule`` (``schedule``, acts): :class:`cfer.strategies.schedule.TrainingSchedule`, the
  learning rate, epochs, trainable layers, batch size and early stopping of each experience;
- ``seen_class_mask`` (``evaluate``, inert): :class:`cfer.strategies.masking.SeenClassMask`,
  evaluation outputs restricted to the classes seen so far.
"""

from __future__ import annotations

from cfer.plugins.registry import register_plugin

register_plugin("schedule", path="cfer.strategies.schedule:TrainingSchedule", phase="schedule",
                first_experience="acts",
                description="learning rate, epochs, trainable layers and early stopping per experience")
register_plugin("seen_class_mask", path="cfer.strategies.masking:SeenClassMask", phase="evaluate",
                first_experience="inert", description="evaluation outputs restricted to the seen classes")
