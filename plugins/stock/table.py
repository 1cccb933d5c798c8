"""What cfer knows of each stock Avalanche 0.6 plugin and strategy (light: no torch, no Avalanche).

Measured on a tiny class-incremental stream shaped like cfer's (6 basic classes, then one class
per experience, the growing head, one label per class, task label 0), each class against Naive
with the same seeds and the generators re-seeded at each experience, so that "acts" means the
weights differ, not the random stream. The support table of docs/avalanche.md is generated
from this table (``python tools/avalanche_docs.py --write``), and ``tests/test_stock.py`` runs
every row marked as working and checks what it claims.

A row says:

- ``verdict``: ``works``, ``caveat`` (works, read the note), ``fixed`` (runs through the
  workaround ``fix``, a function of :mod:`cfer.plugins.workarounds.stock`), ``use`` (cfer
  has a registered strategy with the workaround: ``note`` names it), ``no`` (cannot work on a
  class-incremental stream with cfer's model: ``note`` says why);
- ``phase``: where the plugin stands (:data:`cfer.plugins.registry.PHASES`); a plugin not in
  the table gets the phase its callbacks imply (:func:`cfer.plugins.stock.signature.infer_phase`);
- ``first_experience``: ``inert`` when measured equal to Naive after experience 0 (nothing to
  regularise or replay yet), else ``acts``;
- ``inject``: constructor arguments cfer supplies (``model``, ``feature_extractor``,
  ``input_size``, ``n_classes``), which a config cannot write.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stock:
    """One stock Avalanche class, as cfer runs it (see the module docstring)."""

    kind: str  # plugin | strategy
    verdict: str  # works | caveat | fixed | use | no
    note: str = ""
    phase: str = ""  # plugins: "" = from its callbacks
    first_experience: str = "acts"
    fix: str = ""  # name of the function in cfer.plugins.workarounds.stock
    inject: tuple[str, ...] = ()
    example: dict = field(default_factory=dict)  # settings the support test runs it with
    untested: str = ""  # why tests/test_stock.py does not run a row that runs

    @property
    def runs(self) -> bool:
        return self.verdict in ("works", "caveat", "fixed")


P, S = "plugin", "strategy"

#: Class name -> row. Plugins are looked up in ``avalanche.training.plugins``, strategies in
#: ``avalanche.training``.
TABLE: dict[str, Stock] = {
    # --- plugins -------------------------------------------------------------------------
    "ReplayPlugin": Stock(P, "works", "experience-balanced buffer", "memory", "inert",
                          example={"mem_size": 8}),
    "EWCPlugin": Stock(P, "works", "", "regularize", "inert", example={"ewc_lambda": 100.0}),
    "SynapticIntelligencePlugin": Stock(
        P, "fixed", "stock: importances are 0 on CPU (stored weights are views), trains as Naive; "
        "fixed: copies, importances >= 0", "regularize", "inert", fix="synaptic_intelligence_plugin",
        example={"si_lambda": 100.0}),
    "MASPlugin": Stock(P, "works", "its importance pass runs the model in training mode, so it "
                       "updates BatchNorm statistics after experience 0", "regularize", "acts",
                       example={"lambda_reg": 1.0}),
    "RWalkPlugin": Stock(P, "fixed", "stock: trains every minibatch in eval mode; fixed: train mode "
                         "restored", "regularize", "inert", fix="rwalk_plugin",
                         example={"ewc_lambda": 0.1}),
    "LwFPlugin": Stock(P, "works", "distils previously seen units only", "regularize", "inert",
                       example={"alpha": 1.0}),
    "AGEMPlugin": Stock(P, "works", "", "regularize", "inert",
                        example={"patterns_per_experience": 4, "sample_size": 4}),
    "GEMPlugin": Stock(P, "works", "needs the quadprog package", "regularize", "inert",
                       example={"patterns_per_experience": 4, "memory_strength": 0.5}),
    "MIRPlugin": Stock(P, "caveat", "online design: after each experience the memory excludes the "
                       "classes of its last minibatch", "regularize", "inert",
                       example={"batch_size_mem": 4, "mem_size": 8, "subsample": 8}),
    "GSS_greedyPlugin": Stock(P, "fixed", "stock: its scoring gradient leaks into the step, and "
                              "mem_size must be >= mem_strength x 2 x batch size; fixed: gradients "
                              "cleared", "memory", "inert", fix="gss_greedy_plugin",
                              inject=("input_size",), example={"mem_size": 20, "mem_strength": 2},
                              untested="its scoring needs a memory filled with mem_strength x 2 "
                              "minibatches; the test stream is smaller (measured on a larger one)"),
    "FeatureDistillationPlugin": Stock(
        P, "fixed", "stock: reads model.features as a tensor (a method on cfer's model); fixed: "
        "model.feature_extractor", "regularize", "inert", fix="feature_distillation_plugin",
        example={"alpha": 1.0}),
    "FromScratchTrainingPlugin": Stock(P, "works", "restores the initial weights (equal shapes)",
                                       "schedule", "inert"),
    "CWRStarPlugin": Stock(P, "caveat", "freezes all but the head from experience 1 (frozen layers in "
                           "eval mode); zeroes head rows", "schedule", "acts", inject=("model",)),
    "GDumbPlugin": Stock(P, "caveat", "retrains a copy of the initial model on the memory only",
                         "memory", "acts", example={"mem_size": 8}),
    "RARPlugin": Stock(P, "caveat", "adversarial replay; slow", "", "acts",
                       example={"batch_size_mem": 4, "mem_size": 8}),
    "LFLPlugin": Stock(P, "no", "needs an Avalanche BaseModel (get_features), which cfer's CLModel is "
                       "not, and leaves the model in eval mode"),
    "BiCPlugin": Stock(P, "use", "cfer's registered strategy bic (the stock plugin assigns a read-only "
                       "experience.dataset and uses MultiStepLR(verbose=), removed in torch 2.14)"),
    "CoPEPlugin": Stock(P, "no", "needs a fixed-width embedding as the last Linear (not a growing "
                        "head), the number of classes in advance, and online experiences"),
    "LRSchedulerPlugin": Stock(P, "no", "takes a scheduler object built on the optimizer, which YAML "
                               "cannot hold; cfer's training section schedules the learning rate"),
    "EarlyStoppingPlugin": Stock(P, "no", "cfer's training.patience does early stopping (the stock "
                                 "plugin needs an initial evaluation cfer turns off)"),
    "GenerativeReplayPlugin": Stock(P, "no", "needs a generator strategy object (a VAE trainer), "
                                    "which YAML cannot hold"),
    "TrainGeneratorAfterExpPlugin": Stock(P, "no", "trains GenerativeReplayPlugin's generator; alone "
                                          "it does nothing"),
    "CurrentDataNCMUpdate": Stock(P, "no", "eval-only: needs a TrainEvalModel with an NCM head"),
    "MemoryNCMUpdate": Stock(P, "no", "eval-only: needs a TrainEvalModel with an NCM head"),
    "NCMOracle": Stock(P, "no", "eval-only: needs a TrainEvalModel with an NCM head"),
    "CurrentDataFeCAMUpdate": Stock(P, "no", "eval-only: needs a TrainEvalModel with a FeCAM head"),
    "MemoryFeCAMUpdate": Stock(P, "no", "eval-only: needs a TrainEvalModel with a FeCAM head"),
    "FeCAMOracle": Stock(P, "no", "eval-only: needs a TrainEvalModel with a FeCAM head"),
    "EvaluationPlugin": Stock(P, "no", "metrics, not a method: cfer adds its own"),
    # --- strategies ----------------------------------------------------------------------
    "Naive": Stock(S, "works", "fine-tuning"),
    "Cumulative": Stock(S, "works", "retrains on all experiences so far"),
    "FromScratchTraining": Stock(S, "works", "restores the initial weights before each experience"),
    "Replay": Stock(S, "works", "experience-balanced buffer", example={"mem_size": 8}),
    "GDumb": Stock(S, "caveat", "retrains a copy of the initial model on the memory only",
                   example={"mem_size": 8}),
    "LwF": Stock(S, "works", "", example={"alpha": 1.0, "temperature": 2.0}),
    "AGEM": Stock(S, "works", "", example={"patterns_per_exp": 4, "sample_size": 4}),
    "GEM": Stock(S, "works", "needs the quadprog package", example={"patterns_per_exp": 4}),
    "EWC": Stock(S, "works", "", example={"ewc_lambda": 100.0}),
    "SynapticIntelligence": Stock(S, "fixed", "Naive + the fixed SynapticIntelligencePlugin (stock: "
                                  "trains as Naive on CPU)", fix="synaptic_intelligence_plugin",
                                  example={"si_lambda": 100.0}),
    "MAS": Stock(S, "works", "see MASPlugin", example={"lambda_reg": 1.0}),
    "MIR": Stock(S, "caveat", "see MIRPlugin", example={"mem_size": 8, "subsample": 8,
                                                        "batch_size_mem": 4}),
    "ER_ACE": Stock(S, "works", "", example={"mem_size": 8, "batch_size_mem": 4}),
    "ER_AML": Stock(S, "no", "hangs when a class buffer holds fewer images than a minibatch, and "
                    "fails when one is empty (er_aml.py _before_training_exp)"),
    "MER": Stock(S, "caveat", "per-sample inner loop: slow", example={"mem_size": 8, "batch_size_mem": 4,
                                                                      "n_inner_steps": 2}),
    "GSS_greedy": Stock(S, "fixed", "Naive + the fixed GSS_greedyPlugin", fix="gss_greedy_plugin",
                        inject=("input_size",), example={"mem_size": 20, "mem_strength": 2},
                        untested="see GSS_greedyPlugin"),
    "CWRStar": Stock(S, "use", "avalanche:CWRStarPlugin on naive (the strategy needs the head's "
                     "layer name; the plugin finds the last Linear)"),
    "OnlineNaive": Stock(S, "no", "deprecated; on batch experiences it is Naive"),
    "JointTraining": Stock(S, "use", "cfer's registered strategy joint (trains once on the stream)"),
    "DER": Stock(S, "use", "cfer's registered strategy der (stored logits padded for the growing head)"),
    "BiC": Stock(S, "use", "cfer's registered strategy bic (see BiCPlugin)"),
    "ICaRL": Stock(S, "use", "cfer's registered strategy icarl (the stock one reads the old "
                   "benchmark API and reloads a grown head)"),
    "LFL": Stock(S, "no", "see LFLPlugin"),
    "CoPE": Stock(S, "no", "see CoPEPlugin"),
    "GenerativeReplay": Stock(S, "no", "its default generator is an MNIST (1x28x28) VAE; the generator "
                              "is an object YAML cannot hold"),
    "FeatureReplay": Stock(S, "no", "replaces the model by a FeatureExtractorModel (its saved weights "
                           "would not load into cfer's model)"),
    "StreamingLDA": Stock(S, "no", "no backpropagation: needs a frozen feature extractor and the "
                          "number of classes in advance"),
    "SCR": Stock(S, "no", "needs its own SCRModel (a projection head; NCM evaluation)"),
    "PNNStrategy": Stock(S, "no", "task-incremental: needs a task label per experience and its own "
                         "PNN model"),
    "PackNet": Stock(S, "no", "task-incremental: prunes per task label, and its layers have no "
                     "out_features, so a growing head breaks"),
    "ExpertGateStrategy": Stock(S, "no", "task-incremental, downloads ImageNet AlexNet, 224 px "
                                "autoencoders"),
    "AR1": Stock(S, "no", "builds its own pretrained MobileNetV1 (download), 50 outputs"),
    "LearningToPrompt": Stock(S, "no", "written for timm 0.x (fails on timm 1.0), ImageNet ViT "
                              "weights, 224 px"),
    "LaMAML": Stock(S, "no", "needs the higher package, and a forward(x, task_labels)"),
    "VAETraining": Stock(S, "no", "trains a generator, not a classifier"),
    "AETraining": Stock(S, "no", "trains an autoencoder, not a classifier"),
}


def row(kind: str, name: str) -> Stock | None:
    """The row of ``name`` if it is a ``kind`` (plugin | strategy) of the table."""
    r = TABLE.get(name)
    return r if r is not None and r.kind == kind else None
