"""Registry entries of the plugins that make a run exact and comparable (light: no torch).

Added by the builder and the runner themselves, never named in a config; registered so that
their phases order them (:mod:`cfer.plugins.registry`):

- ``experience_seeder`` (``seeding``, acts): re-seeds every random generator at each experience
  boundary, so it changes the random stream of experience 0 (every method has it alike);
- ``start_from_weights`` (``schedule``, inert): while priming it replaces the training of
  experience 0 by its result, weights trained elsewhere the same way; otherwise it does nothing;
- ``final_validation`` (``evaluate``, inert): scores the validation stream after the last
  ``train()`` call;
- ``stop_at_epoch_boundary`` (``schedule``, inert): ends the run at the next epoch boundary once
  a stop was requested by signal (SLURM's time-limit warning, preemption);
- ``no_effect_warning`` (``evaluate``, inert): names a plugin whose ``before_backward`` left the
  loss unchanged for a whole experience (a method training as its base does).
"""

from __future__ import annotations

from cfer.plugins.registry import register_plugin

register_plugin("experience_seeder", path="cfer.plugins.run.experience_seed:ExperienceSeedPlugin",
                phase="seeding", first_experience="acts",
                description="re-seeds every random generator at each experience boundary")
register_plugin("start_from_weights", path="cfer.plugins.run.start_from_weights:StartFromWeightsPlugin",
                phase="schedule", first_experience="inert",
                description="runs an experience with weights trained elsewhere and no epoch")
register_plugin("final_validation", path="cfer.plugins.run.final_validation:FinalValidationPlugin",
                phase="evaluate", first_experience="inert",
                description="the final model's accuracy on the validation stream")
register_plugin("stop_at_epoch_boundary", path="cfer.plugins.run.preemption:StopAtEpochBoundary",
                phase="schedule", first_experience="inert",
                description="ends the run at the next epoch boundary once a stop was requested")
register_plugin("no_effect_warning", path="cfer.plugins.run.no_effect:NoEffectWarning",
                phase="evaluate", first_experience="inert",
                description="warns when a loss-changing plugin left the loss unchanged for an experience")
