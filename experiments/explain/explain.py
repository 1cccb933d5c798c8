"""``cfer explain RUN_DIR``: Grad-CAM of a finished continual run, step by step.

For each method's first run with saved models (``output.save_models``), on the same K test
faces per compound class, it draws and scores:

- the basic model's (step 0) Grad-CAM for each of the compound's two basic components on
  the compound face (the paper's figure: where does the basic model look for *happy* and for
  *surprised* on a happily-surprised face);
- the model's Grad-CAM for the compound class after the step that learnt it, after each later
  step (``--step all``, the default, or one step ``N``) and after the last step.

Scores (:mod:`cfer.core.attribution_scores`), mean ± std over the faces, per class and step, go
into ``results.json`` under ``gradcam`` and into report.md:

- component overlap: Pearson correlation and top-20%-mass IoU between the compound map and
  the union of its components' basic-model maps;
- attention drift: the same similarities between the map after the learning step and after
  a later step;
- action units (synthetic faces only, where the generator knows where it drew each unit): the
  share of the map's mass inside the regions of the face's active AUs and the pointing-game
  hit rate; for a component's basic map, the regions of that component's AUs. Refused, with a
  one-line reason (``au_refused``), when the Grad-CAM layer's grid has fewer than
  :data:`~cfer.core.attribution_scores.MIN_AU_CELLS` cells a side.

Each score is tested against its empirical nulls (:mod:`cfer.experiments.explain.nulls`: an
image-independent map, a centred prior, randomised-weights models, shuffled faces, the
non-component basic maps, a separately trained model), pooled over the faces of all classes,
under ``tests`` of each method. The grids (:mod:`cfer.experiments.explain.plots`) go to
``plots/gradcam/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfer.core import attribution_scores as S
from cfer.core.metric_definitions import mean_std
from cfer.experiments.explain.nulls import component_masks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Faces:
    """The K test faces of each compound class, shared by every method (same fold and seed)."""

    indices: dict[str, np.ndarray]  # compound class -> indices into the data set
    images: dict[str, np.ndarray]  # compound class -> (K, H, W, 3) uint8
    masks: dict[str, object]  # compound class -> RegionMasks (synthetic data) or None
    subjects: dict[str, np.ndarray]  # compound class -> (K,) the faces' subjects
    class_names: tuple[str, ...]  # class id -> name in the benchmark the faces were drawn from


@dataclass(frozen=True)
class RunModels:
    """One method's run whose models were saved: its record and the state-dict paths per step."""

    method: str
    record: dict
    paths: list[Path]


# --------------------------------------------------------------------------- what to explain

def _runs_with_models(run_dir: Path, results: dict, methods: list[str] | None) -> list[RunModels]:
    where = run_dir / "results.json"
    known = list(results.get("methods", {}))
    for m in methods or []:
        if m not in known:
            raise ValueError(f"--method {m}: not in {where} (methods: {', '.join(known)})")
    out = []
    for m in methods or known:
        rec = next((r for r in results["methods"][m]["runs"] if r.get("models")), None)
        if rec is None:
            raise FileNotFoundError(f"{where}: method {m} has no saved models (runs[].models); rerun "
                                    "with output.save_models: first (or all)")
        paths = [run_dir / p for p in rec["models"]]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: saved model listed in {where} is missing "
                                    f"({len(missing)} of {len(paths)} files of {m})")
        out.append(RunModels(m, rec, paths))
    first = out[0].record
    for r in out[1:]:
        if (r.record["fold"], r.record["seed"]) != (first["fold"], first["seed"]):
            raise ValueError(f"{where}: the saved runs of {out[0].method} and {r.method} differ in fold or "
                             "seed, so their test faces differ; pass --method to explain one of them")
    return out


def _steps(step: str | int, n_steps: int) -> list[int]:
    """The steps whose compound maps are scored besides each class's learning step and the last."""
    if step == "all":
        return list(range(1, n_steps))
    try:
        n = int(step)
    except ValueError:
        raise ValueError(f"--step {step}: expected all or a step number") from None
    if not 1 <= n < n_steps:
        raise ValueError(f"--step {n}: the run has compound steps 1..{n_steps - 1}")
    return [n]


def _faces(ctx, record: dict, *, images: int) -> Faces:
    """The first ``images`` test faces (data set order) of each compound class of the run."""
    from cfer.benchmarks.synthetic_faces.masks import load_region_masks

    data = ctx.data()
    ds = data.dataset
    bm = ctx.benchmark(order=record["order"], fold=record["fold"], seed=record["seed"])
    test = np.asarray(bm.info.split_indices["test"])
    names = np.asarray(ds.class_names)[ds.labels[test]]
    synthetic = ctx.cfg.dataset.kind == "synthetic"
    idx, ims, masks, subjects = {}, {}, {}, {}
    for c in record["order"]:
        chosen = test[names == c][:images]
        idx[c], ims[c], subjects[c] = chosen, data.images[chosen], np.asarray(ds.subjects)[chosen]
        masks[c] = (load_region_masks([ds.paths[i] for i in chosen], size=ctx.cfg.benchmark.image_size)
                    if synthetic else None)
    return Faces(indices=idx, images=ims, masks=masks, subjects=subjects,
                 class_names=tuple(bm.info.class_names))


# --------------------------------------------------------------------------- scores

def _au_scores(maps: np.ndarray, mask: np.ndarray | None, cells) -> dict:
    if mask is None:
        return {}
    return {"au_share": mean_std(S.mask_share(maps, mask)),
            "au_pointing": mean_std(S.pointing_hit(maps, mask, cells=cells))}


def class_scores(*, basic: dict[str, np.ndarray], compound: dict[int, np.ndarray], learnt: int,
                 masks=None, cells: tuple[int, int] | None = None, top_mass: float = 0.2) -> dict:
    """The scores of one compound class (module docstring): ``basic`` maps per component
    (step 0), ``compound`` maps per step (from ``learnt`` on), ``masks`` a RegionMasks, or None
    (no ground truth, or region scores refused at this resolution); ``cells`` the Grad-CAM grid
    (the pointing game points at its cells)."""
    ref = S.union(*basic.values())
    steps = {}
    for s, maps in sorted(compound.items()):
        entry = {"overlap_pearson": mean_std(S.pearson(maps, ref)),
                 "overlap_iou": mean_std(S.top_mass_iou(maps, ref, mass=top_mass))}
        if s != learnt:
            entry["drift_pearson"] = mean_std(S.pearson(maps, compound[learnt]))
            entry["drift_iou"] = mean_std(S.top_mass_iou(maps, compound[learnt], mass=top_mass))
        entry.update(_au_scores(maps, None if masks is None else masks.expression_masks(), cells))
        steps[str(s)] = entry
    out = {"learnt_step": learnt, "components": list(basic), "steps": steps}
    if masks is not None:
        out["basic"] = {b: _au_scores(m, component_masks(masks, b), cells) for b, m in basic.items()}
    return out


#: Summary key -> (score key, the step it is read at: the class's learning step or the last).
SUMMARY = {
    "overlap_pearson_learnt": ("overlap_pearson", "learnt"),
    "overlap_pearson_last": ("overlap_pearson", "last"),
    "overlap_iou_learnt": ("overlap_iou", "learnt"), "overlap_iou_last": ("overlap_iou", "last"),
    "drift_pearson_last": ("drift_pearson", "last"), "drift_iou_last": ("drift_iou", "last"),
    "au_share_learnt": ("au_share", "learnt"), "au_share_last": ("au_share", "last"),
    "au_pointing_last": ("au_pointing", "last"),
}


def summarize(classes: dict[str, dict], *, last: int) -> dict:
    """Mean ± std over compound classes of each class's mean score (``SUMMARY``)."""
    out = {}
    au = any("basic" in c for c in classes.values())
    for name, (key, when) in SUMMARY.items():
        if key.startswith("au_") and not au:
            continue  # no ground truth, or refused at this resolution: no number at all
        vals = []
        for c in classes.values():
            step = str(c["learnt_step"] if when == "learnt" else last)
            vals.append((c["steps"].get(step, {}).get(key) or {}).get("mean"))
        out[name] = mean_std(vals)
    if any("basic" in c for c in classes.values()):
        out["basic_au_share"] = mean_std(v["au_share"]["mean"] for c in classes.values()
                                         for v in c["basic"].values())
    return out


# --------------------------------------------------------------------------- one method

def explain_method(run: RunModels, *, cfg, faces: Faces, class_names: tuple[str, ...], steps: list[int],
                   layer: str, device, au: bool = True, cells: tuple[int, int] | None = None,
                   top_mass: float = 0.2) -> tuple[dict, dict]:
    """(results entry, maps) of one method's run: maps[class] = {"basic": {component: maps},
    "basic_all": {basic class: maps}, "steps": {step: maps}}, every map (K, H, W); region
    scores only when ``au``."""
    import torch

    from cfer.benchmarks.taxonomy import components
    from cfer.experiments.explain.gradcam import gradcam, load_model, normalised_batch
    from cfer.experiments.run.model_files import load_state

    order = run.record["order"]
    n_steps = len(run.paths)
    ids = {c: i for i, c in enumerate(class_names)}
    learnt = {c: 1 + order.index(c) for c in order}
    x = {c: normalised_batch(faces.images[c]) for c in order}
    maps: dict[str, dict] = {c: {"basic": {}, "basic_all": {}, "steps": {}} for c in order}
    wanted = sorted(set(steps) | set(learnt.values()) | {n_steps - 1})
    cache: dict[Path, object] = {}  # the model last loaded

    def model_at(step: int):
        path = run.paths[step]
        if path not in cache:
            cache.clear()
            state = load_state(path, fix="the run's saved models are damaged: run the method again into "
                               "another --out (output.save_models keeps them)")
            cache[path] = load_model(cfg.model, state, device=device, where=str(path))
        return cache[path]

    # One Grad-CAM pass per distinct model: the basic model's maps of every basic class (its
    # components, and the others for the non-component null) at once, then per saved step every
    # class learnt by then (an offline method's one model serves every step).
    pairs = [(c, b) for c in order for b in class_names[:len(class_names) - len(order)]]
    out = gradcam(model_at(0), torch.cat([x[c] for c, _ in pairs]),
                  [ids[b] for c, b in pairs for _ in range(len(x[c]))], layer=layer)
    for (c, b), part in zip(pairs, _split(out, [len(x[c]) for c, _ in pairs])):
        maps[c]["basic_all"][b] = part
    for c in order:
        maps[c]["basic"] = {b: maps[c]["basic_all"][b] for b in components(c)}
    by_model: dict[Path, list[int]] = {}
    for s in wanted:
        by_model.setdefault(run.paths[s], []).append(s)
    for same in by_model.values():
        todo = [c for c in order if learnt[c] <= max(same)]
        out = gradcam(model_at(same[0]), torch.cat([x[c] for c in todo]),
                      [ids[c] for c in todo for _ in range(len(x[c]))], layer=layer)
        for c, part in zip(todo, _split(out, [len(x[c]) for c in todo])):
            for s in same:
                if learnt[c] <= s:
                    maps[c]["steps"][s] = part
    classes = {c: class_scores(basic=maps[c]["basic"], compound=maps[c]["steps"], learnt=learnt[c],
                               masks=faces.masks[c] if au else None, cells=cells, top_mass=top_mass)
               for c in order}
    run_name = f"order{run.record.get('order_index', 0)}_fold{run.record['fold']}_seed{run.record['seed']}"
    entry = {"run": run_name, "order": order, "last_step": n_steps - 1,
             "offline": len(set(run.paths)) == 1,  # one model for every step (joint)
             "classes": classes, "summary": summarize(classes, last=n_steps - 1)}
    return entry, maps


def _split(maps: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """``maps`` cut into consecutive parts of ``sizes``."""
    return np.split(maps, np.cumsum(sizes)[:-1])


# --------------------------------------------------------------------------- the command

def explain(run_dir: str | Path, *, methods: list[str] | None = None, step: str | int = "all",
            images: int = 4, layer: str | None = None, device: str | None = None,
            plots: bool = True) -> dict:
    """Grad-CAM of the run in ``run_dir`` (module docstring); returns results.json's ``gradcam``
    entry, also written there, with the grids under ``plots/gradcam/`` and report.md redrawn."""
    from cfer.core.atomic import atomic_write_json
    from cfer.experiments.config.load import load_config
    from cfer.experiments.explain.gradcam import layer_cells, random_models, require_captum
    from cfer.experiments.explain.nulls import attach_tests
    from cfer.experiments.run.context import RunContext
    from cfer.experiments.run.results_store import phase_of, read_results
    from cfer.experiments.run.sessions import resolve_device
    from cfer.strategies.models.registry import gradcam_layer

    require_captum()  # the one-line install hint before any work
    start = time.perf_counter()
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    if phase_of(results) != "continual":
        raise ValueError(f"{run_dir / 'results.json'}: cfer explain reads continual runs, "
                         f"not phase {phase_of(results)}")
    if images < 1:
        raise ValueError(f"--images {images}: must be >= 1")
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: not found (the run's resolved config)")
    cfg = load_config(cfg_path)
    runs = _runs_with_models(run_dir, results, methods)
    layer = layer or gradcam_layer(cfg.model.name)
    dev = resolve_device(device or cfg.runner.device)
    ctx = RunContext(cfg, run_dir)
    faces = _faces(ctx, runs[0].record, images=images)
    size = cfg.benchmark.image_size
    randoms = random_models(cfg.model, n_classes=len(faces.class_names), device=dev)
    cells = layer_cells(randoms[0], layer=layer, size=size)
    synthetic = all(m is not None for m in faces.masks.values())
    refused = S.au_refusal(cells, size=size) if synthetic else None
    entry = {"layer": layer, "model": cfg.model.name, "images_per_class": images, "top_mass": 0.2,
             "fold": runs[0].record["fold"], "seed": runs[0].record["seed"], "device": str(dev),
             "image_size": size, "cells": list(cells), "min_au_cells": S.MIN_AU_CELLS,
             **({"au_refused": refused} if refused else {}),
             "faces": {c: [str(ctx.data().dataset.paths[i]) for i in v] for c, v in faces.indices.items()},
             "methods": {}}
    all_maps = {}
    names = {tuple(runs[0].record["order"]): faces.class_names}
    for run in runs:
        key = tuple(run.record["order"])
        bm_names = names[key] = names.get(key) or _class_names(ctx, run.record)
        steps = _steps(step, len(run.paths))
        log.info("Grad-CAM of %s (%d steps)", run.method, len(run.paths))
        entry["methods"][run.method], all_maps[run.method] = explain_method(
            run, cfg=cfg, faces=faces, class_names=bm_names, steps=steps, layer=layer, device=dev,
            au=synthetic and not refused, cells=cells)
    log.info("Grad-CAM nulls: %d randomised-weights models", len(randoms))
    null_maps = _random_maps(randoms, faces=faces, class_names=faces.class_names, layer=layer)
    entry["nulls"] = attach_tests(entry, all_maps, null_maps, masks=faces.masks, subjects=faces.subjects,
                                  cells=cells, au=synthetic and not refused)
    if plots:
        from cfer.experiments.explain.plots import plot_explain

        entry["plots"] = [p.relative_to(run_dir).as_posix()
                          for p in plot_explain(all_maps, faces=faces, entry=entry, out=run_dir / "plots")]
    entry["seconds"] = round(time.perf_counter() - start, 2)
    results["gradcam"] = entry
    atomic_write_json(run_dir / "results.json", results)
    if plots and cfg.output.plots:
        from cfer.experiments.report.run_report import write_report

        write_report(run_dir)
    return entry


def _random_maps(models: list, *, faces: Faces, class_names: tuple[str, ...], layer: str) -> dict:
    """maps[class] = {"compound": (R, K, H, W), component: (R, K, H, W)}: the randomised-weights
    models' maps of each compound class and of its components, on its faces (the same for every
    method: these models know nothing of any run)."""
    import torch

    from cfer.benchmarks.taxonomy import components
    from cfer.experiments.explain.gradcam import gradcam, normalised_batch

    ids = {c: i for i, c in enumerate(class_names)}
    order = list(faces.images)
    x = {c: normalised_batch(faces.images[c]) for c in order}
    rows = [(c, t) for c in order for t in (c, *components(c))]
    sizes = [len(x[c]) for c, _ in rows]
    batch = torch.cat([x[c] for c, _ in rows])
    targets = [ids[t] for c, t in rows for _ in range(len(x[c]))]
    per_model = [_split(gradcam(m, batch, targets, layer=layer), sizes) for m in models]
    out: dict[str, dict] = {c: {} for c in order}
    for i, (c, t) in enumerate(rows):
        out[c]["compound" if t == c else t] = np.stack([parts[i] for parts in per_model])
    return out


def _class_names(ctx, record: dict) -> tuple[str, ...]:
    """Class id -> name of a run, as its benchmark numbers them (basic block, then its order)."""
    bm = ctx.benchmark(order=record["order"], fold=record["fold"], seed=record["seed"])
    return tuple(bm.info.class_names)


def cli_explain(args) -> int:
    """``cfer explain RUN_DIR [--method M] [--step all|N] [--images K] [--layer PATH]``."""
    start = time.perf_counter()
    entry = explain(args.run_dir, methods=args.methods, step=args.step, images=args.images,
                    layer=args.layer, device=args.device)
    from cfer.experiments.report.gradcam_section import summary_lines

    print("\n".join(summary_lines(entry)))
    print(f"\nwrote {args.run_dir}/: results.json (gradcam), plots/gradcam/, report.md in "
          f"{time.perf_counter() - start:.1f} s (maps, scores and grids: {entry['seconds']:.1f} s)")
    return 0
