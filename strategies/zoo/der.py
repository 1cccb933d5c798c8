"""DER++ (Buzzega et al.): replay of stored logits and labels."""

from cfer.strategies.registry import register_strategy


@register_strategy("der", description="DER++: replay matching stored logits (der_beta=0: DER)")
def der(ctx):
    from unittest import mock

    import torch
    import torch.nn.functional as F
    import avalanche.training.supervised.der as der_module
    from avalanche.training import DER
    from avalanche.training.supervised.der import ClassBalancedBufferWithLogits

    n_classes = ctx.n_classes
    compute_logits = der_module.compute_dataset_logits

    def padded_logits(*args, **kwargs):
        # Stored logits have the head's width at storage time; pad them to the final
        # number of classes with NaN ("not a class yet") so that all rows collate.
        return [F.pad(row, (0, n_classes - row.shape[0]), value=float("nan"))
                for row in compute_logits(*args, **kwargs)]

    class PaddedLogitsBuffer(ClassBalancedBufferWithLogits):
        def update(self, strategy, **kwargs):
            with mock.patch.object(der_module, "compute_dataset_logits", padded_logits):
                super().update(strategy, **kwargs)

    class GrowingHeadDER(DER):
        """Why: Avalanche's DER compares stored logits with the current output, whose width
        grows with the head (shape mismatch). Units that did not exist when a sample was
        stored (NaN) take the current output's value, so they add no loss or gradient."""

        def _after_forward(self, **kwargs):
            if self.replay_loader is not None:
                current = self.mb_output[: self.batch_size_mem].detach()
                stored = self.batch_logits[:, : current.shape[1]]
                self.batch_logits = torch.where(torch.isnan(stored), current, stored)
            super()._after_forward(**kwargs)

    cfg = ctx.config
    buffer = ctx.class_balanced_buffer(PaddedLogitsBuffer)
    strategy = GrowingHeadDER(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(),
                              alpha=cfg.der_alpha, beta=cfg.der_beta, **ctx.template_kwargs())
    strategy.storage_policy = buffer  # the paper's memory rule (grow or limit)
    return strategy
