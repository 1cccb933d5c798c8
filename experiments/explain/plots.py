"""The Grad-CAM figures of ``cfer explain``: one grid per compound class and method, one overview.

Grid ``plots/gradcam/<method>_<class>.png``: the K faces in rows; in columns the face, the
basic model's map for each of the two components, the class's map after the step that learnt
it and after the last step. Overview ``plots/gradcam_overview.png``: the first face of every
compound class in rows; the face, the union of the basic model's component maps, then for each
method the class's map after learning and after the last step. Each map is blended over its
face, scaled to its own maximum (one colour bar: share of the map's maximum).

A grid is one mosaic image with its titles, not a matplotlib axes per tile: 90 grids of the
quickstart draw in seconds instead of minutes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.core import attribution_scores as S
from cfer.core.atomic import atomic_write_bytes
from cfer.experiments.report.figures import PlotConfig, slug

CMAP = "jet"  # the usual Grad-CAM palette (Selvaraju et al. 2017)
TILE_INCHES = 1.0  # side of one face on the page
PAD = 2  # pixels between tiles (at the faces' resolution)
# zlib level of the PNGs: encoding is most of a grid's time. Measured on a 5 x 4 grid (this
# 2-core VM, busy): level 1 0.53 s and 391 KB, Pillow's default 6 0.71 s and 302 KB.
PNG_COMPRESS = 1


def overlay(face: np.ndarray, cam: np.ndarray | None, *, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: ``face`` with ``cam`` (scaled to its maximum) blended over it."""
    from matplotlib import colormaps

    img = np.asarray(face, dtype=np.float64) / 255.0
    if cam is None:
        return img
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float64))
    top = cam.max()
    heat = colormaps[CMAP](cam / top if top > 0 else np.zeros_like(cam))[..., :3]
    return (1 - alpha) * img + alpha * heat


def mosaic(tiles: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Rows of equal-sized (H, W, 3) tiles as one image, white between them."""
    h, w = tiles[0][0].shape[:2]
    rows, cols = len(tiles), max(len(r) for r in tiles)
    out = np.ones((rows * (h + PAD) - PAD, cols * (w + PAD) - PAD, 3))
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            out[i * (h + PAD):i * (h + PAD) + h, j * (w + PAD):j * (w + PAD) + w] = t
    return out


def _draw(image: np.ndarray, *, title: str, col_titles: Sequence[str], row_titles: Sequence[str],
          path: Path, cfg: PlotConfig) -> Path:
    """One mosaic with column titles above, row titles left, a colour bar right, saved as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    n_rows, n_cols = len(row_titles) or 1, len(col_titles)
    left = 0.25 + 0.06 * max(map(len, row_titles), default=0)  # inches for 7-pt labels
    top, right = 0.75, 0.9
    w, h = n_cols * TILE_INCHES + left + right, n_rows * TILE_INCHES + top + 0.1
    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / w, 0.1 / h, n_cols * TILE_INCHES / w, n_rows * TILE_INCHES / h))
    ax.imshow(image, interpolation="bilinear")
    ax.set_axis_off()
    tile_w, tile_h = image.shape[1] / n_cols, image.shape[0] / n_rows
    for j, t in enumerate(col_titles):
        ax.text((j + 0.5) * tile_w, -4, t, ha="center", va="bottom", fontsize=7)
    for i, t in enumerate(row_titles):
        ax.text(-6, (i + 0.5) * tile_h, t, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9, y=1 - 0.08 / h, va="top")
    cax = fig.add_axes(((w - right + 0.2) / w, 0.1 / h + 0.15 * n_rows * TILE_INCHES / h, 0.12 / w,
                        0.7 * n_rows * TILE_INCHES / h))
    fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), cax=cax).set_label("share of the map's maximum",
                                                                          fontsize=7)
    cax.tick_params(labelsize=6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=cfg.dpi, pil_kwargs={"compress_level": PNG_COMPRESS})
    return atomic_write_bytes(path, buf.getvalue())


def class_grid(*, method: str, cls: str, faces: np.ndarray, basic: Mapping[str, np.ndarray],
               learnt: tuple[int, np.ndarray], last: tuple[int, np.ndarray], path: Path,
               cfg: PlotConfig) -> Path:
    """One class and method: faces in rows; face, component maps, after learning, after the last step."""
    cols = [("face", None)] + [(f"basic model:\n{b}", m) for b, m in basic.items()]
    cols += [(f"after step {learnt[0]}\n(learnt)", learnt[1]), (f"after step {last[0]}\n(last)", last[1])]
    tiles = [[overlay(faces[r], None if m is None else m[r]) for _, m in cols] for r in range(len(faces))]
    return _draw(mosaic(tiles), title=f"Grad-CAM, {method}: {cls}", col_titles=[t for t, _ in cols],
                 row_titles=[""] * len(faces), path=path, cfg=cfg)


def overview(all_maps: Mapping[str, Mapping], *, faces, entry: Mapping, path: Path, cfg: PlotConfig) -> Path:
    """First face of each compound class; the basic union, then per method learnt / last maps."""
    methods = list(all_maps)
    classes = list(faces.images)
    # The basic model of the first method trained step by step (an offline method has none).
    continual = next((m for m in methods if not entry["methods"][m].get("offline")), methods[0])
    tiles = []
    for c in classes:
        face = faces.images[c][0]
        basic = all_maps[continual][c]["basic"]
        row = [overlay(face, None), overlay(face, S.union(*[m[:1] for m in basic.values()])[0])]
        for m in methods:
            info = entry["methods"][m]
            steps = all_maps[m][c]["steps"]
            row += [overlay(face, steps[info["classes"][c]["learnt_step"]][0]),
                    overlay(face, steps[info["last_step"]][0])]
        tiles.append(row)
    col_titles = ["face", "basic model:\ncomponents"] + [f"{m}\n{when}" for m in methods
                                                          for when in ("learnt", "last step")]
    title = ("Grad-CAM on compound faces: the basic model's maps of the two components, then\n"
             "each method's map of the compound class after learning it and after the last step")
    return _draw(mosaic(tiles), title=title, col_titles=col_titles, row_titles=classes, path=path, cfg=cfg)


def plot_explain(all_maps: Mapping[str, Mapping], *, faces, entry: Mapping, out: Path,
                 cfg: PlotConfig | None = None) -> list[Path]:
    """The overview and every grid under ``out`` (a run's ``plots/``); their paths."""
    cfg = cfg or PlotConfig()
    paths = [overview(all_maps, faces=faces, entry=entry, path=out / "gradcam_overview.png", cfg=cfg)]
    for method, per_class in all_maps.items():
        info = entry["methods"][method]
        for cls, maps in per_class.items():
            learnt = info["classes"][cls]["learnt_step"]
            last = info["last_step"]
            paths.append(class_grid(method=method, cls=cls, faces=faces.images[cls], basic=maps["basic"],
                                    learnt=(learnt, maps["steps"][learnt]), last=(last, maps["steps"][last]),
                                    path=out / "gradcam" / f"{slug(method)}_{slug(cls)}.png", cfg=cfg))
    return paths
