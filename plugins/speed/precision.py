"""Mixed precision, channels-last and ``torch.compile`` for any Avalanche strategy.

Why: Avalanche's templates have no mixed precision and no compile option.
Rather than one subclass per strategy, :func:`enable` works on a built
strategy:

- the model gets a forward pre-hook and an always-called forward hook
  (:class:`ModelPrecision`): every call of it runs under ``torch.autocast``
  with a channels-last input and returns float32 outputs. That covers the
  template's forward in training and evaluation, and also the calls plugins
  make themselves (exemplar ranking; a distillation teacher or LwF's previous
  model, which are deep copies and keep the hooks), while losses, metrics and
  plugin losses see float32 logits (docs/design.md, "Avalanche pitfalls":
  plugin losses run outside autocast);
- fp16 only: the strategy's ``backward``/``optimizer_step`` gain a
  ``GradScaler`` (:class:`LossScaling`); gradients are unscaled right
  after the backward pass, so ``after_backward`` plugins (GEM, A-GEM
  projections) read true gradients, and a step with inf/NaN is skipped;
- ``channels_last``: inputs and convolution weights in NHWC layout (weights
  stay NCHW with plugins that ``.view`` gradients: A-GEM, GSS);
- ``compile``: :func:`compile_model` compiles the static parts of the model
  (``nn.Module.compile``: state-dict keys unchanged), never a growing head,
  which would recompile at each new class, with a dynamic batch dimension;
  only once the freeze levels no longer change (:func:`freeze_settled`: a
  ``requires_grad`` flip would recompile); a distillation teacher (a deep copy)
  is compiled and laid out like the model (:meth:`PrecisionPlugin.prepare_copy`);
  ``reduce-overhead`` uses CUDA graphs (:class:`PrecisionPlugin` marks each
  iteration's start).
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

from cfer.plugins.speed.config import PrecisionConfig
from cfer.plugins.workarounds import templates


def check(config: PrecisionConfig, device, *, compile_backend=None) -> None:
    """Raise a clear ValueError when ``config`` cannot run on ``device``."""
    import os
    import shutil

    device = torch.device(device)
    if config.precision != "fp32" and device.type not in ("cuda", "cpu"):
        raise ValueError(f"training.precision={config.precision}: autocast is supported here on cuda "
                         f"and cpu, not {device.type}")
    if config.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"training.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16 "
                         "support; use fp16 or fp32")
    if (config.compile != "false" and device.type == "cpu" and compile_backend in (None, "inductor")
            and not (os.environ.get("CXX") or any(shutil.which(c) for c in ("g++", "c++", "clang++")))):
        raise ValueError(f"training.compile={config.compile} on the CPU needs a C++ compiler "
                         "(torch.compile's inductor backend); install one or use training.compile=false")


def resolve(config: PrecisionConfig, device, model) -> PrecisionConfig:
    """``config`` with its ``auto`` settings resolved for ``model`` on ``device``
    (:meth:`PrecisionConfig.resolved`)."""
    device = torch.device(device)
    convolutional = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return config.resolved(device.type, convolutional=convolutional, bf16=bf16)


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float(o) for o in out)
    return out


class ModelPrecision:
    """Forward hooks that run a model under autocast with channels-last input, float32 out.

    The pre-hook enters ``torch.autocast``; the forward hook (registered with
    ``always_call=True``, so it also runs when the forward raises) leaves it
    and casts half-precision outputs to float32.
    """

    def __init__(self, *, device_type: str, dtype, channels_last: bool):
        self.device_type, self.dtype, self.channels_last = device_type, dtype, channels_last
        self._contexts: list = []

    def install(self, model: torch.nn.Module) -> None:
        model.register_forward_pre_hook(self.before)
        model.register_forward_hook(self.after, always_call=True)
        model._cfer_precision = self  # marker; deep copies carry hooks and marker together

    def before(self, module, args):
        ctx = None
        if self.dtype is not None:
            ctx = torch.autocast(device_type=self.device_type, dtype=self.dtype)
            ctx.__enter__()
        self._contexts.append(ctx)
        if self.channels_last and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
        return None

    def after(self, module, args, output):
        ctx = self._contexts.pop() if self._contexts else None
        if ctx is not None:
            ctx.__exit__(None, None, None)
        return _to_float(output)


def _dynamic_batch(module, args):
    """Forward pre-hook: the batch dimension of the input may vary (the last, partial batch;
    evaluation batches), so the compiled parts trace it symbolically once instead of
    compiling a static graph first and a dynamic one at the first other size."""
    if args and isinstance(args[0], torch.Tensor) and args[0].dim() > 0:
        torch._dynamo.maybe_mark_dynamic(args[0], 0)


def compile_model(model: torch.nn.Module, *, mode: str, backend=None) -> list[str]:
    """Compile (in place) every largest submodule with parameters and no growing part.

    Avalanche ``DynamicModule`` s (growing heads) stay eager: compiled they
    would recompile at each new class. The root is not compiled either (its
    hooks, :class:`ModelPrecision`, stay outside the graphs); a root pre-hook
    marks the batch dimension dynamic. Returns the names of the compiled
    submodules. ``backend`` is ``torch.compile``'s (tests use ``"eager"``).
    With ``reduce-overhead`` CUDA graphs still record one graph per batch size.
    """
    from avalanche.models import DynamicModule

    kwargs = {"mode": None if mode == "default" else mode}
    if backend is not None:
        kwargs["backend"] = backend
    compiled: list[str] = []

    def visit(module, prefix):
        for name, child in module.named_children():
            if isinstance(child, DynamicModule):
                continue
            if not any(isinstance(m, DynamicModule) for m in child.modules()):
                if any(True for _ in child.parameters()):
                    child.compile(**kwargs)
                    compiled.append(prefix + name)
            else:
                visit(child, prefix + name + ".")

    visit(model, "")
    if not compiled:
        raise ValueError(f"training.compile={mode}: {type(model).__name__} has no part with parameters "
                         "outside its growing head to compile")
    model.register_forward_pre_hook(_dynamic_batch)
    return compiled


def freeze_settled(strategy) -> bool:
    """Whether the trainable layers of ``strategy.model`` stay as they are from now on.

    ``requires_grad`` is guarded by ``torch.compile``: a part compiled before a
    freeze level changes is compiled again. With the project's training schedule
    (:class:`cfer.strategies.schedule.TrainingSchedule`, found by its
    ``phases``/``continual`` attributes: this layer cannot import it) the levels
    are settled once the current experience's stages and the continual stage all
    freeze alike: from the first continual experience with the paper's two-stage
    basic training. Without a schedule nothing changes them.
    """
    schedule = next((p for p in strategy.plugins if hasattr(p, "phases") and hasattr(p, "continual")),
                    None)
    if schedule is None:
        return True
    if not schedule.phases:  # no experience begun yet
        return False
    return len({p.freeze_below for p in (*schedule.phases, schedule.continual)}) == 1


class LossScaling:
    """fp16 loss scaling for an Avalanche SGD template, installed as its ``backward`` and
    ``optimizer_step`` (instance attributes: every strategy class is covered as built).

    ``backward`` scales the loss and unscales the gradients at once, so that
    ``after_backward`` plugins see true gradients; ``optimizer_step`` lets the
    ``GradScaler`` skip steps with inf/NaN gradients and update its scale.
    """

    def __init__(self, strategy, *, device_type: str):
        cls = type(strategy)
        own = templates.own_sgd_steps(strategy)
        if own is None:
            raise ValueError(f"training.precision=fp16: {cls.__name__} is not an Avalanche SGD template, "
                             "so its backward pass cannot be loss-scaled; use bf16 or fp32")
        if own:
            raise ValueError(f"training.precision=fp16: {cls.__name__} has its own {own[0]}(), which "
                             "loss scaling would replace; use bf16 or fp32")
        self.strategy = strategy
        self.scaler = torch.amp.GradScaler(device_type)
        self.backward_calls = 0
        self._scaled = False
        templates.replace_sgd_steps(strategy, backward=self.backward, optimizer_step=self.optimizer_step)

    def backward(self):
        s = self.strategy
        self.scaler.scale(s.loss).backward(retain_graph=s.retain_graph)
        self.scaler.unscale_(s.optimizer)
        self._scaled = True
        self.backward_calls += 1

    def optimizer_step(self):
        if self._scaled:
            self._scaled = False
            self.scaler.step(self.strategy.optimizer)
            self.scaler.update()
        else:  # gradients computed elsewhere, not scaled: a plain step
            self.strategy.optimizer.step()


class PrecisionPlugin(SupervisedPlugin):
    """Keeps the strategy's model prepared (hooks, layout, compiled parts) and, with
    ``reduce-overhead``, marks each iteration's start for CUDA graphs."""

    def __init__(self, config: PrecisionConfig, *, compile_backend=None):
        super().__init__()
        self.config = config
        self.compile_backend = compile_backend
        self.compiled: list[str] = []
        self.loss_scaling: LossScaling | None = None
        self._model = None
        self._checked = False

    def prepare(self, strategy) -> None:
        """Hooks and layout at once; the compiled parts once the freeze levels are settled
        (:func:`freeze_settled`), so that no change of ``requires_grad`` recompiles them."""
        model = strategy.model
        cfg = self.config
        if model is not self._model:
            device = torch.device(strategy.device)
            if cfg.dtype is not None or cfg.channels_last:
                if getattr(model, "_cfer_precision", None) is None:
                    ModelPrecision(device_type=device.type, dtype=cfg.dtype,
                                   channels_last=cfg.channels_last).install(model)
                if cfg.channels_last and not templates.flattens_gradients(strategy):
                    model.to(memory_format=torch.channels_last)
            self._model, self.compiled = model, []
        if cfg.compile != "false" and not self.compiled and freeze_settled(strategy):
            self.compiled = compile_model(model, mode=cfg.compile, backend=self.compile_backend)

    def prepare_copy(self, module: torch.nn.Module) -> torch.nn.Module:
        """A frozen copy of the model (a distillation teacher) as the model runs: channels-last
        and compiled when the model is configured so (its precision hooks come with the copy).
        Its trainable layers never change, so it is compiled at once."""
        cfg = self.config
        if cfg.channels_last:
            module.to(memory_format=torch.channels_last)
        if cfg.compile != "false":
            compile_model(module, mode=cfg.compile, backend=self.compile_backend)
        return module

    def before_training_exp(self, strategy, **kwargs):
        self.prepare(strategy)

    def before_eval_exp(self, strategy, **kwargs):
        self.prepare(strategy)

    def before_training_iteration(self, strategy, **kwargs):
        if self.config.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()

    def before_eval_iteration(self, strategy, **kwargs):
        if self.config.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()

    def after_training_iteration(self, strategy, **kwargs):
        if self._checked or self.config.precision != "fp16":
            return
        self._checked = True
        if self.loss_scaling is None or not self.loss_scaling.backward_calls:
            raise ValueError(f"training.precision=fp16: {type(strategy).__name__} computes its gradients "
                             "without strategy.backward(), so they cannot be loss-scaled; use bf16 or fp32")


def enable(strategy, config: PrecisionConfig | None = None, *,
           compile_backend=None) -> PrecisionPlugin | None:
    """Apply ``config`` to a built Avalanche strategy (``None``: fp32 defaults, nothing to do)."""
    config = config or PrecisionConfig()
    device = torch.device(strategy.device)
    if config.precision == "auto" and device.type == "cuda":
        # the device preset: a CUDA run picks its fastest convolution algorithms once per shape
        torch.backends.cudnn.benchmark = True
    config = resolve(config, device, strategy.model)
    check(config, device, compile_backend=compile_backend)
    if config.is_default:
        return None
    if any(isinstance(p, PrecisionPlugin) for p in strategy.plugins):
        raise ValueError("precision.enable: the strategy already has a PrecisionPlugin")
    plugin = PrecisionPlugin(config, compile_backend=compile_backend)
    if config.precision == "fp16":
        plugin.loss_scaling = LossScaling(strategy, device_type=device.type)
    strategy.plugins.append(plugin)
    plugin.prepare(strategy)
    return plugin
