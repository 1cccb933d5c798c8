"""ExperienceSeedPlugin: re-seed every random number generator at each experience boundary."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


def experience_seed(seed: int, experience: int, *, end: bool = False) -> int:
    """The seed at the start (or, ``end``, at the end of training) of experience
    ``experience`` of a run seeded ``seed``: a fixed mix, so that neighbouring run seeds
    do not share experience seeds."""
    return (int(seed) * 1_000_003 + int(experience) * 7_919 + int(end) * 104_729 + 12_345) % (2**31 - 1)


class ExperienceSeedPlugin(SupervisedPlugin):
    """Seeds Python, NumPy and torch (Avalanche's ``RNGManager``) with
    :func:`experience_seed` ``(seed, i)`` before anything of experience ``i`` is drawn,
    and again with ``(seed, i, end=True)`` when its training loop is over, before any
    after-experience work (memory updates, importances, bias correction).

    Why: a run may start from a basic model trained elsewhere (shared across class
    orders, ``runner.share_basic``) instead of training experience 0 itself. Without
    a re-seed, the random stream of experience 1 (head initialisation, shuffling,
    augmentation, exemplar draws, dropout) would depend on how many numbers
    experience 0 drew, so the shared and the self-trained run would differ after
    step 0. Seeding at each boundary makes experience ``i`` depend only on
    ``(seed, i)`` and the state the strategy carries in, so both give the same
    numbers to the last digit on CPU.

    ``before_train_dataset_adaptation`` is the first callback of ``train(exp)``
    (before dataset adaptation, the data loader and model adaptation), so this
    plugin must come first in the plugin list. Avalanche has no callback between
    the last epoch and the template's own after-experience work (DER and ER-ACE
    update their buffers there before any plugin runs), so :meth:`install` wraps
    the template's ``_after_training_exp``
    (:func:`cfer.plugins.workarounds.templates.call_before_after_training_exp`).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def before_train_dataset_adaptation(self, strategy, **kwargs):
        self._seed(experience_seed(self.seed, strategy.experience.current_experience))

    def end_of_training(self, strategy) -> None:
        """Re-seed for the after-experience work of the current experience."""
        self._seed(experience_seed(self.seed, strategy.experience.current_experience, end=True))

    def install(self, strategy) -> None:
        """Call :meth:`end_of_training` whenever ``strategy``'s training loop of an experience ends."""
        from cfer.plugins.workarounds.templates import call_before_after_training_exp

        call_before_after_training_exp(strategy, lambda: self.end_of_training(strategy))

    @staticmethod
    def _seed(value: int) -> None:
        from avalanche.training.determinism.rng_manager import RNGManager

        RNGManager.set_random_seeds(value)
