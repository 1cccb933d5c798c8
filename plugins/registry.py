"""The plugin registry: every plugin by name, with its typed params, its phase and what it does
to experience 0. Light on purpose: no torch, no Avalanche (configs are checked before either
is imported).

Registering a plugin (docs/extending.md)::

    @register_plugin("l2_pull", params=L2PullParams, phase="regularize", first_experience="inert")
    class L2PullPlugin(SupervisedPlugin): ...

or, for a plugin whose module imports torch, from a light module of its room, by the import
path of its class (``register_plugin("distillation", path="cfer.plugins.method.distillation:"
"BasicDistillationPlugin", ...)``), so that naming it in a config imports nothing heavy.

- ``params``: a frozen :class:`PluginParams` dataclass (defaults written once, citing their
  source; checks in ``__post_init__``); its errors name ``plugins.<name>.<key>``, and
  ``strategies.params.<method>.<key>`` when the plugin is reached through a method. The
  plugin class takes the same keyword arguments (or defines ``from_params(params, ctx)`` when
  it also needs the build context: the run seed, the memory sizes).
- ``phase``: where the plugin stands in a strategy's plugin list (:data:`PHASES`, in order).
  :func:`order` sorts a strategy's plugins by phase (stable within a phase) and refuses, in
  one line, a plugin whose callbacks break its phase's rule or a second plugin in a phase
  that holds one.
- ``first_experience``: ``"inert"`` when the plugin provably does not change how experience 0
  trains (no memory yet, no teacher yet, no penalty yet, no random draw before training),
  else ``"acts"``. Methods whose plugins are all inert train experience 0 as their base does
  (``tests/test_plugins.py`` checks each declaration).

A plugin object the registry does not know (an Avalanche plugin a strategy class adds itself,
a caller's own plugin object) keeps the place it was given: :func:`order` sorts it with the
latest phase among the registered plugins before it, so nothing given before it moves after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import ClassVar

from cfer.core.extensions import load_entry_points
from cfer.core.typed import Checked, ConfigError, record, resolve

#: Avalanche's plugin callbacks that make a training step: a plugin defining one changes how
#: the model trains at every mini-batch.
STEP_CALLBACKS = ("before_forward", "after_forward", "before_backward", "after_backward",
                  "before_update", "after_update")
#: The callbacks that change what an experience trains on.
TRAIN_DATA_CALLBACKS = ("before_train_dataset_adaptation", "after_train_dataset_adaptation")
GRADIENT_CALLBACKS = ("after_backward", "before_update", "after_update")


@dataclass(frozen=True)
class Phase:
    """A place in a strategy's plugin list: what stands there, and the rule of its callbacks
    (``needs``: it defines at least one of these; ``forbids``: it defines none of these;
    ``single``: at most one plugin stands there)."""

    name: str
    meaning: str
    needs: tuple[str, ...] = ()
    forbids: tuple[str, ...] = ()
    single: bool = False

    def rule(self) -> str:
        parts = []
        if self.needs:
            parts.append(f"defines {' or '.join(self.needs)}")
        if self.forbids:
            parts.append(f"defines none of {', '.join(self.forbids)}")
        return " and ".join(parts)


#: The phases, in the order a strategy's plugins run (docs/extending.md says what each means).
PHASES: tuple[Phase, ...] = (
    Phase("seeding", "re-seeds the random generators at experience boundaries; first",
          forbids=STEP_CALLBACKS, single=True),
    Phase("loss", "rescales strategy.loss (the paper's (1 - g) CE + g KD), before anything adds to it",
          needs=("before_backward",), forbids=GRADIENT_CALLBACKS),
    Phase("regularize", "adds a penalty to strategy.loss or changes gradients (EWC, LwF, an L2 pull)",
          needs=("before_backward", "after_backward"), forbids=TRAIN_DATA_CALLBACKS),
    Phase("memory", "changes what a step trains on (replay memories, new-class draws)",
          forbids=("before_backward", *GRADIENT_CALLBACKS)),
    Phase("schedule", "learning rates, epochs, trainable layers, early stopping, trained weights",
          forbids=STEP_CALLBACKS),
    Phase("evaluate", "observes and scores only: metrics, progress, throughput, output masks",
          forbids=(*STEP_CALLBACKS, *TRAIN_DATA_CALLBACKS)),
    Phase("precision", "autocast, channels-last and compiling of the model and its copies",
          forbids=(*STEP_CALLBACKS, *TRAIN_DATA_CALLBACKS)),
    Phase("data", "replaces the loaders with device-resident ones; last",
          forbids=(*STEP_CALLBACKS, *TRAIN_DATA_CALLBACKS), single=True),
)
PHASE_NAMES = tuple(p.name for p in PHASES)
FIRST_EXPERIENCE = ("inert", "acts")

#: Plugins of other libraries that a strategy adds itself (not named in a config, so not
#: registered, and not sorted by phase: they keep the place their strategy gives them), with
#: what they do to experience 0 and why (``"module:Class"`` -> (first_experience, reason)).
#: The basic-phase fingerprint (cfer.experiments.run.basic_phase) reads them; a plugin that is
#: neither registered nor listed here counts as acting on experience 0.
FOREIGN: dict[str, tuple[str, str]] = {
    "avalanche.training.plugins.replay:ReplayPlugin": (
        "inert", "its buffer is empty during experience 0: before_training_exp returns without "
                 "touching the loader, and the buffer is filled after the experience"),
    "avalanche.training.plugins.lwf:LwFPlugin": (
        "inert", "no previous model during experience 0: its penalty is 0; the model is copied "
                 "after the experience"),
}

#: Light modules of this layer that register the built-in plugins (imported on first lookup).
BUILTIN = ("cfer.plugins.method.params", "cfer.plugins.run.entries", "cfer.plugins.speed.entries",
           "cfer.plugins.stock.entries")


class PluginParams(Checked):
    """Base of a plugin's params dataclass; ``plugin`` is set by :func:`register_plugin`."""

    plugin: ClassVar[str] = ""

    @classmethod
    def prefix(cls) -> str:
        return f"plugins.{cls.plugin or cls.__name__}"

    @classmethod
    def no_keys_hint(cls) -> str:
        return f", plugin {cls.plugin!r} has no settings"


@dataclass(frozen=True)
class NoPluginParams(PluginParams):
    """The params of a plugin that has no settings of its own (or takes them from its
    config section, as the fast data path takes ``data:``)."""


@dataclass(frozen=True)
class PluginEntry:
    """A registered plugin: ``path`` is ``"module:Class"`` of its class."""

    name: str
    path: str
    params: type
    phase: str
    first_experience: str
    description: str = ""
    cls: type | None = dataclasses.field(default=None, compare=False, repr=False)  # when decorated

    def load(self) -> type:
        """The plugin class (imports its module, unless it was registered by decorating it)."""
        if self.cls is not None:
            return self.cls
        module, _, qualname = self.path.partition(":")
        obj = import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def resolve(self, value=None, *, where: str = "config", prefix: str | None = None):
        """``value`` (None, a mapping or a params instance) as this plugin's params."""
        return resolve(self.params, value, where=where, prefix=prefix or self.params.prefix())

    def build(self, params=None, ctx=None):
        """The plugin object of ``params`` (defaults when None); ``ctx``: the strategy's build
        context, handed to the class's ``from_params`` when it has one."""
        cls = self.load()
        params = self.resolve(params, where=f"plugins.{self.name}")
        if hasattr(cls, "from_params"):
            return cls.from_params(params, ctx)
        return cls(**record(params))


_ENTRIES: dict[str, PluginEntry] = {}
#: Name prefix -> the function giving the entry of a name with that prefix (``avalanche:<Class>``,
#: :mod:`cfer.plugins.stock.entries`): names a lookup computes rather than a table lists.
_RESOLVERS: dict[str, object] = {}
_BY_PATH: dict[str, PluginEntry] = {}
_CHECKED: set[tuple[type, str]] = set()  # (class, phase) pairs found to keep the rule
_loaded = False


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_plugin(name: str, *, phase: str, first_experience: str, params: type | None = None,
                    path: str | None = None, description: str = ""):
    """Register plugin ``name`` (see the module docstring). With ``path`` the entry is
    registered now and returned; without, this is a decorator of the plugin class."""
    if phase not in PHASE_NAMES:
        raise ValueError(f"plugins.{name}: phase {phase!r} is not one of {', '.join(PHASE_NAMES)}")
    if first_experience not in FIRST_EXPERIENCE:
        raise ValueError(f"plugins.{name}: first_experience {first_experience!r} is not inert or acts")
    params = NoPluginParams if params is None else params
    if not (isinstance(params, type) and issubclass(params, PluginParams)
            and dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
        raise TypeError(f"plugins.{name}: params must be a frozen PluginParams dataclass, got {params!r}")
    if params is not NoPluginParams:
        owner = params.__dict__.get("plugin")
        if owner and owner != name:
            raise ValueError(f"plugins.{name}: {params.__name__} already holds the params of {owner!r}; "
                             f"give {name!r} a subclass of its own")
    else:  # its own empty dataclass, so that its errors name it
        params = dataclass(frozen=True)(type(f"{name.title().replace('_', '')}Params", (NoPluginParams,), {}))

    def add(class_path: str, text: str, cls: type | None = None) -> PluginEntry:
        old = _ENTRIES.get(name)
        if old is not None and old.path != class_path:
            raise ValueError(f"plugins.{name} is already registered for {old.path}")
        entry = PluginEntry(name, class_path, params, phase, first_experience, text, cls)
        if cls is not None:
            check_callbacks(cls, entry)  # before it is registered: a refused plugin is not
        params.plugin = name
        _ENTRIES[name] = entry
        # a class registered under several names (the memory-selection variants): its first name
        _BY_PATH.setdefault(class_path, entry)
        return entry

    if path is not None:
        return add(path, description)

    def decorate(cls):
        doc = (cls.__doc__ or "").strip().splitlines()
        add(_class_path(cls), description or (doc[0] if doc else ""), cls)
        return cls

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            import_module(module)
        load_entry_points()  # installed packages' cfer.extensions (cfer.core.extensions)


def register_resolver(prefix: str, resolve_name) -> None:
    """Make ``resolve_name(name) -> PluginEntry`` answer the lookups of names that start with
    ``prefix`` (it raises ValueError, in one line, for a name it refuses)."""
    _RESOLVERS[prefix] = resolve_name


def plugin_entry(name: str) -> PluginEntry:
    """The registry entry of plugin ``name``: the one lookup by name."""
    _load()
    for prefix, resolve_name in _RESOLVERS.items():
        if name.startswith(prefix) and name not in _ENTRIES:
            return resolve_name(name)
    if name not in _ENTRIES:
        raise ValueError(f"unknown plugin {name!r}; registered: {', '.join(available_plugins())}")
    return _ENTRIES[name]


def available_plugins() -> list[str]:
    """Names of the registered plugins, by phase, then name."""
    _load()
    rank = {p: i for i, p in enumerate(PHASE_NAMES)}
    return [e.name for e in sorted(_ENTRIES.values(), key=lambda e: (rank[e.phase], e.name))]


def entry_of(plugin) -> PluginEntry | None:
    """The entry of a plugin object (its class or nearest registered base class), else None."""
    _load()
    own = getattr(plugin, "cfer_plugin_entry", None)  # built from an entry no class path names
    if isinstance(own, PluginEntry):
        return own
    for cls in type(plugin).__mro__:
        entry = _BY_PATH.get(_class_path(cls))
        if entry is not None:
            return entry
    return None


def _no_op_base(cls: type) -> bool:
    """Avalanche's plugin base classes define every callback as a no-op (and ``object``,
    ``Generic`` and ``ABC`` define none)."""
    return cls is object or cls.__module__ == "avalanche.core" or (
        (cls.__module__, cls.__qualname__) in (("typing", "Generic"), ("abc", "ABC")))


def callbacks(cls: type) -> set[str]:
    """The Avalanche callbacks ``cls`` (or a base other than Avalanche's no-op ones) defines."""
    return {k for c in cls.__mro__ if not _no_op_base(c) for k, v in vars(c).items()
            if k.startswith(("before_", "after_")) and callable(v)}


def check_callbacks(cls: type, entry: PluginEntry) -> None:
    """Refuse, in one line, a plugin class whose callbacks break its phase's rule."""
    if (cls, entry.phase) in _CHECKED:
        return
    phase = PHASES[PHASE_NAMES.index(entry.phase)]
    defined = callbacks(cls)
    bad = sorted(defined & set(phase.forbids))
    if bad or (phase.needs and not defined & set(phase.needs)):
        what = f"defines {', '.join(bad)}" if bad else f"defines none of {', '.join(phase.needs)}"
        raise ConfigError(f"plugins.{entry.name}: {cls.__name__} {what}, but a plugin of phase "
                          f"{phase.name!r} ({phase.meaning}) {phase.rule()}")
    _CHECKED.add((cls, entry.phase))


def order(plugins: Iterable, *, where: str = "") -> list:
    """``plugins`` sorted by phase (stable), after checking each registered plugin's callbacks
    and the phases that hold one plugin. An unregistered plugin ranks with the latest phase of
    the registered plugins before it (so it keeps its place after them)."""
    plugins = list(plugins)
    rank, latest, seen = [], 0, {}
    for p in plugins:
        entry = entry_of(p)
        current = latest
        if entry is not None:
            check_callbacks(type(p), entry)
            current = PHASE_NAMES.index(entry.phase)
            latest = max(latest, current)
            phase = PHASES[current]
            if phase.single:
                if phase.name in seen and seen[phase.name] is not p:
                    raise ConfigError(f"{where + ': ' if where else ''}plugins.{entry.name}: phase "
                                      f"{phase.name!r} holds one plugin, and "
                                      f"plugins.{entry_of(seen[phase.name]).name} is already there")
                seen[phase.name] = p
        rank.append(current)
    return [p for _, _, p in sorted(zip(rank, range(len(plugins)), plugins), key=lambda t: t[:2])]


def phases_of(plugins: Iterable) -> list[str | None]:
    """The phase of each plugin object (None: not registered)."""
    return [e.phase if (e := entry_of(p)) is not None else None for p in plugins]
