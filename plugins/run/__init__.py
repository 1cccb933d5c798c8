"""Plugins that make a run exact and comparable, whatever the strategy.

- :mod:`~cfer.plugins.run.experience_seed`: :class:`ExperienceSeedPlugin`, every random
  generator re-seeded at each experience boundary;
- :mod:`~cfer.plugins.run.start_from_weights`: :class:`StartFromWeightsPlugin`, an
  experience run through ``train`` with already trained weights and no epoch (a shared
  basic model);
- :mod:`~cfer.plugins.run.final_validation`: :class:`FinalValidationPlugin`, the final
  model's accuracy on the validation stream;
- :mod:`~cfer.plugins.run.finite_loss`: :class:`FiniteLossGuard`, a run whose loss is not
  finite stops, naming the run, experience and epoch.
"""
