"""How the synthetic faces' compound expressions relate to their components, from the
generator itself.

    python tools/synthetic_au_separability.py [--subjects 230] [--seed 0]

Prints (1) per compound class its primary action units (AUs) against the union of its two
components' primaries (benchmarks/synthetic_faces/action_units.py, after Du et al. 2014,
Table 1), and the classes whose primaries are identical; (2) how well the 21 classes can be
told apart from the generator's exact AU intensities, the information every image is drawn
from (before drawing, pose, lighting and noise): subject-independent 5-fold accuracy of a
few classifiers on the intensities, and per-class recall of the best one. An upper bound on
what a model of the images can learn that does not depend on the model. docs/datasets.md
quotes its output.
"""

from __future__ import annotations

import argparse


def pattern_table() -> list[dict]:
    """Per compound: its primaries, its components' union, what it lacks and adds."""
    from cfer.benchmarks.synthetic_faces.action_units import AU_TABLE
    from cfer.benchmarks.taxonomy import components, is_compound

    rows = []
    for name, pat in AU_TABLE.items():
        if not is_compound(name):
            continue
        union = set().union(*(AU_TABLE[c].primary for c in components(name)))
        own = set(pat.primary)
        rows.append({"class": name, "primary": sorted(own), "components_union": sorted(union),
                     "lacks": sorted(union - own), "adds": sorted(own - union),
                     "union": own == union})
    return rows


def identical_primaries() -> list[list[str]]:
    """Groups of expressions (basic or compound) with the same primary AUs."""
    from cfer.benchmarks.synthetic_faces.action_units import AU_TABLE
    from cfer.benchmarks.taxonomy import NEUTRAL

    groups: dict[tuple, list[str]] = {}
    for name, pat in AU_TABLE.items():
        if name != NEUTRAL:
            groups.setdefault(tuple(sorted(pat.primary)), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def intensities(*, subjects: int, seed: int):
    """(X, y, subject, class names): the AU intensities every generated image is drawn from,
    recomputed with the writer's random streams (benchmarks/synthetic_faces/writer.py)."""
    import numpy as np

    from cfer.benchmarks.synthetic_faces.action_units import AU_NAMES
    from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
    from cfer.benchmarks.synthetic_faces.subjects import action_units, random_subject
    from cfer.benchmarks.synthetic_faces.writer import _expressions
    from cfer.benchmarks.taxonomy import NEUTRAL

    config = SyntheticConfig()
    exprs = _expressions()
    k = config.images_per_expression
    X, y, subj = [], [], []
    names = [n for _, n in exprs if n != NEUTRAL]
    for index in range(subjects):
        ident, images = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(2)
        subject = random_subject(np.random.default_rng(ident), config)
        img_seeds = images.spawn(len(exprs) * k)
        for e, (_, name) in enumerate(exprs):
            for r in range(k):
                rng = np.random.default_rng(img_seeds[e * k + r])
                au = action_units(name, subject, rng, config)  # the image's first draws
                if name != NEUTRAL:
                    X.append([au[a] for a in AU_NAMES])
                    y.append(names.index(name))
                    subj.append(index)
    return np.asarray(X), np.asarray(y), np.asarray(subj), names


def separability(*, subjects: int, seed: int) -> dict:
    """Subject-independent 5-fold accuracy of a few classifiers on the exact intensities, and
    per-class recall of the best."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y, groups, names = intensities(subjects=subjects, seed=seed)
    models = {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "RBF SVM": make_pipeline(StandardScaler(), SVC(C=10.0)),
        "random forest": RandomForestClassifier(n_estimators=300, random_state=0),
        "15-nearest neighbours": make_pipeline(StandardScaler(), KNeighborsClassifier(15)),
    }
    out = {"images": len(y), "classes": len(names), "accuracy": {}}
    best = None
    for label, model in models.items():
        pred = cross_val_predict(model, X, y, groups=groups, cv=GroupKFold(5))
        acc = float((pred == y).mean())
        out["accuracy"][label] = acc
        if best is None or acc > best[1]:
            best = (label, acc, pred)
    label, _, pred = best
    out["best"] = label
    out["recall"] = {n: float((pred[y == i] == i).mean()) for i, n in enumerate(names)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subjects", type=int, default=230)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rows = pattern_table()
    print(f"compounds whose primaries are the union of their components': "
          f"{sum(r['union'] for r in rows)} of {len(rows)}")
    for r in rows:
        if not r["union"]:
            print(f"  {r['class']}: primaries {r['primary']}, components' union {r['components_union']}"
                  f" (lacks {r['lacks']}, adds {r['adds']})")
    for g in identical_primaries():
        print(f"identical primaries: {', '.join(g)}")
    sep = separability(subjects=args.subjects, seed=args.seed)
    print(f"\n{sep['images']} images, {sep['classes']} classes, subject-independent 5-fold accuracy on "
          f"the exact AU intensities (chance {100 / sep['classes']:.1f}%):")
    for label, acc in sep["accuracy"].items():
        print(f"  {label}: {100 * acc:.1f}%")
    worst = sorted(sep["recall"].items(), key=lambda kv: kv[1])
    print(f"recall of the best ({sep['best']}), lowest first: "
          + ", ".join(f"{n} {100 * v:.0f}%" for n, v in worst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
