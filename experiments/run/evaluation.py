"""The Avalanche EvaluationPlugin of a run: Avalanche's metrics (read without a host sync per
mini-batch), our FER metrics, loggers; one-pass evaluation of stream prefixes."""

from __future__ import annotations

from pathlib import Path

from cfer.experiments.config.sections import EvaluationConfig


def build_evaluator(cfg: EvaluationConfig, *, info, log_dir: Path):
    """Returns ``(evaluator, collector, closers)``.

    ``collector`` holds the predictions of the last evaluated stream (the
    runner reads it after each ``strategy.eval``); ``closers`` are called when
    the run ends to flush and close the loggers' files.
    """
    from avalanche.evaluation.metrics import timing_metrics
    from avalanche.logging import CSVLogger, TextLogger

    # Avalanche's metrics read a device value per mini-batch; these are the same metrics
    # (names, values) read once per epoch / experience / stream (cfer.plugins.metrics.deferred).
    from cfer.plugins.metrics.deferred import (
        StreamConfusionMatrix,
        accuracy_metrics,
        bwt_metrics,
        forgetting_metrics,
        loss_metrics,
    )
    from cfer.plugins.metrics.fer import FERPredictionCollector, fer_metrics
    from cfer.plugins.metrics.stream_filter import OnlyStream
    from cfer.plugins.speed.one_pass import OnePassEvaluationPlugin

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    text_file = open(log_dir / "log.txt", "w", encoding="utf-8")
    csv_logger = CSVLogger(log_folder=str(log_dir))
    loggers = [TextLogger(text_file), csv_logger]
    closers = [text_file.close, csv_logger.close]
    if cfg.tensorboard:
        from avalanche.logging import TensorboardLogger

        tb = TensorboardLogger(tb_log_dir=str(log_dir / "tb"))
        loggers.append(tb)
        closers.append(tb.writer.close)  # (Avalanche's logger has no close of its own)
    if cfg.wandb:
        from avalanche.logging import WandBLogger

        wb = WandBLogger(project_name=cfg.wandb_project, run_name=str(log_dir))
        loggers.append(wb)
        closers.append(wb.wandb.finish)
    collector = FERPredictionCollector()
    metrics = [
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(epoch=True, stream=True),
        # Forgetting and BWT key their state by experience id: keep validation passes out.
        *[OnlyStream(m, stream="test") for m in forgetting_metrics(experience=True, stream=True)],
        *[OnlyStream(m, stream="test") for m in bwt_metrics(experience=True, stream=True)],
        timing_metrics(epoch=True),
        *fer_metrics(n_basic=info.n_basic, component_ids=info.component_ids(), collector=collector),
    ]
    if cfg.confusion_matrix:
        # save_image=False: the PNG per evaluation is slow; plots/ has our confusion figures.
        metrics.append(StreamConfusionMatrix())
    # Avalanche's EvaluationPlugin, which also evaluates cfer.plugins.speed.one_pass experiences.
    evaluator = OnePassEvaluationPlugin(*metrics, loggers=loggers)
    return evaluator, collector, closers
