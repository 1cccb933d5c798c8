"""Reading a config: a YAML file (or a shipped config's name) over the defaults of
:class:`~cfer.experiments.config.sections.ExperimentConfig`, then ``--set key=value``
overrides, checked once (:mod:`~cfer.experiments.config.validate`); and saving one."""

from __future__ import annotations

from pathlib import Path

from cfer.core.typed import ConfigError, overlay, parse_override, read_yaml, to_dict
from cfer.experiments.config.sections import ExperimentConfig

#: The shipped configs (``experiments/configs/*.yaml``), reached by name: ``cfer run paper_cfee``.
CONFIG_DIR = Path(__file__).parent.parent / "configs"


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_config_path(name: str | Path | None) -> Path:
    """A path, or the name of a shipped config (``quickstart``, ``paper_cfee.yaml``...)."""
    if name is None:
        return CONFIG_DIR / "quickstart.yaml"
    p = Path(name)
    if p.exists():
        return p
    for cand in (CONFIG_DIR / p.name, CONFIG_DIR / f"{p.name}.yaml"):
        if cand.exists() and p.parent == Path("."):
            return cand
    raise FileNotFoundError(f"{p}: config file does not exist (shipped configs: "
                            f"{', '.join(sorted(q.stem for q in CONFIG_DIR.glob('*.yaml')))})")


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Load a YAML config over the defaults, then apply ``--set`` overrides."""
    from cfer.experiments.config.validate import check_config

    path = resolve_config_path(path)
    data = read_yaml(path)
    if not data:  # the dataclass defaults are not the quickstart: say so rather than run them
        raise ConfigError(f"{path}: the config is empty; name what to run (see "
                          f"{CONFIG_DIR / 'quickstart.yaml'}), or run `cfer run` alone for the quickstart")
    data = {"name": path.stem, **data}  # a config without a name is named after its file
    for o in overrides:
        data = _deep_merge(data, parse_override(o))
    data = with_extensions(data, base_dir=path.parent)
    cfg = overlay(ExperimentConfig(), data, where=str(path))
    check_config(cfg, where=str(path))
    return cfg


def with_extensions(data: dict, *, base_dir: Path) -> dict:
    """Import the extensions ``data`` names (before anything reads a registry: a config names
    their plugins and methods), with file paths made absolute, so that the saved config and
    every worker process find them."""
    from cfer.core.extensions import load_extensions, resolve

    names = data.get("extensions") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{base_dir}: key 'extensions': expected a list of file or module names, "
                          f"got {names!r}")
    names = [resolve(n, base_dir=base_dir) for n in names]
    load_extensions(names)
    return {**data, "extensions": names} if names else data


def save_config(cfg: ExperimentConfig, path: Path, *, header: str = "") -> None:
    """``cfg`` as YAML at ``path`` (atomically), after ``header`` (comment lines that say which
    command wrote it: :mod:`cfer.experiments.run.ownership` reads them)."""
    import yaml

    from cfer.core.atomic import atomic_write_text

    atomic_write_text(path, header + yaml.safe_dump(to_dict(cfg), sort_keys=False))
