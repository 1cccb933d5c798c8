"""Stock Avalanche 0.6 plugins and strategies that break on cfer's stream, made to run when a
config names them (``avalanche:<Class>``, :mod:`cfer.plugins.stock`).

Each fix was found and measured on a tiny class-incremental stream with cfer's growing head
(every Avalanche 0.6 strategy and plugin, the measured table is docs/avalanche.md); each
function takes the stock class's keyword arguments and returns the fixed object. Avalanche is
imported inside the functions.
"""

from __future__ import annotations


def synaptic_intelligence_plugin(**kwargs):
    """``SynapticIntelligencePlugin`` whose stored weights are copies, with importances >= 0.

    Why: its ``extract_weights`` stores ``param.detach().cpu().flatten()``. On CPU ``.cpu()``
    returns the same tensor and ``flatten()`` of a contiguous tensor is a view, so the weights
    before a step (``syn_data["old_theta"]``), after it and at the experience's start
    (``ewc_data[0]``) all alias the live parameters: the path integral
    ``sum_t grad_t * (theta_t+1 - theta_t)`` is 0, every importance is 0, the penalty is 0, and
    SI trains bit for bit as Naive (on CUDA ``.cpu()`` copies, so it works there). Cloning the two
    snapshots that must outlive a step is enough. Once SI really runs, some importances come out
    negative (``grad * step > 0``, e.g. with momentum), and ``update_ewc_data`` clamps them only
    from above (``max=0.001``): a negative importance makes the penalty unbounded below and the
    weights run away (measured: |w| in the hundreds after four experiences), so they are clamped
    at 0 after each experience, as Zenke et al. 2017's Omega (a sum of squares' ratio) is.
    """
    from avalanche.training.plugins import SynapticIntelligencePlugin

    class ClonedSynapticIntelligencePlugin(SynapticIntelligencePlugin):
        # The path integral sums over the training steps: a run primed with saved weights
        # (shared basic model, experience checkpoints) would skip them (basic_phase.primable).
        primable = False

        def before_training_exp(self, strategy, **kw):
            super().before_training_exp(strategy, **kw)
            for p in self.ewc_data[0].values():
                p.data = p.data.clone()

        def before_training_iteration(self, strategy, **kw):
            super().before_training_iteration(strategy, **kw)
            for p in self.syn_data["old_theta"].values():
                p.data = p.data.clone()

        def after_training_exp(self, strategy, **kw):
            super().after_training_exp(strategy, **kw)
            for p in self.ewc_data[1].values():
                p.data = p.data.clamp(min=0)

    return ClonedSynapticIntelligencePlugin(**kwargs)


def rwalk_plugin(**kwargs):
    """``RWalkPlugin`` that puts the model back in training mode after its gradient pass.

    Why: ``_update_grad`` (called in ``before_training_iteration``) sets ``model.eval()`` for
    its extra forward/backward and never restores it, so every training minibatch runs in eval
    mode (measured: all iterations of all experiences): BatchNorm uses frozen running
    statistics and dropout is off.
    """
    from avalanche.training.plugins import RWalkPlugin

    class TrainModeRWalkPlugin(RWalkPlugin):
        primable = False  # its scores accumulate over the training steps, as SI's do

        def before_training_iteration(self, strategy, *a, **kw):
            super().before_training_iteration(strategy, *a, **kw)
            strategy.model.train()

    return TrainModeRWalkPlugin(**kwargs)


def gss_greedy_plugin(**kwargs):
    """``GSS_greedyPlugin`` that clears the gradients its scoring leaves behind.

    Why: ``after_forward`` runs backward passes on memory and on single samples to score them;
    the template zeroed the gradients *before* the forward, so the last scoring gradient is
    added to the minibatch's own at ``optimizer.step()`` (experience 0 already differs from
    Naive, though nothing is replayed yet).
    """
    from avalanche.training.plugins import GSS_greedyPlugin

    class ZeroGradGSSPlugin(GSS_greedyPlugin):
        primable = False  # its memory is chosen by gradients scored during the training steps

        def after_forward(self, strategy, **kw):
            super().after_forward(strategy, **kw)
            strategy.optimizer.zero_grad()

    return ZeroGradGSSPlugin(**kwargs)


def feature_distillation_plugin(**kwargs):
    """``FeatureDistillationPlugin`` reading the features of ``model.feature_extractor``.

    Why: the stock plugin reads ``strategy.model.features`` as the tensor of the last forward
    (Avalanche's FeatureExtractorModel stores it there) and sets it to None after each
    experience. On cfer's CLModel ``features`` is a method: cosine_similarity gets a bound
    method (TypeError), and assigning None shadows the method. Penalty as the stock plugin's:
    ``alpha * (1 - cos(f(x), f_prev(x)))`` (mode cosine) or ``alpha * MSE`` (mode mse).
    """
    import copy

    import torch
    import torch.nn.functional as F
    from avalanche.training.plugins import FeatureDistillationPlugin

    class FeatureExtractorDistillationPlugin(FeatureDistillationPlugin):
        def before_backward(self, strategy, **kw):
            if self.prev_model is None:
                return
            with torch.no_grad():
                old = self.prev_model.feature_extractor(strategy.mb_x)
            new = strategy.model.feature_extractor(strategy.mb_x)
            if self.mode == "cosine":
                strategy.loss += self.alpha * (1 - F.cosine_similarity(new, old, dim=1).mean())
            else:
                strategy.loss += self.alpha * F.mse_loss(new, old)

        def after_training_exp(self, strategy, **kw):
            self.prev_model = copy.deepcopy(strategy.model).eval()

    return FeatureExtractorDistillationPlugin(**kwargs)
