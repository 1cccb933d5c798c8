"""The dataset and loader internals of Avalanche 0.6 that the fast data path
(plugins/speed/) reads, for all items at once where Avalanche reads them one by one."""

from __future__ import annotations


def index_array(indices):
    """A flat-data level's index sequence as an int64 numpy array.

    Why: Avalanche 0.6 keeps a level's indices as a ``LazyIndices``, a Sequence
    with no vectorised access (read item by item it costs a Python call per item).
    Its array form is private: ``_to_eager()`` fills ``_eager_list``. Where those
    are missing the indices are read one by one: correct, only slower.
    """
    import numpy as np

    if isinstance(indices, np.ndarray):
        return indices.astype(np.int64, copy=False)
    if isinstance(indices, (list, tuple, range)):
        return np.asarray(indices, dtype=np.int64)
    # Avalanche's LazyIndices: a Sequence without vectorised access; use its eager array.
    if hasattr(indices, "_to_eager"):
        indices._to_eager()
        if isinstance(getattr(indices, "_eager_list", None), np.ndarray):
            return indices._eager_list
    return np.fromiter(indices, dtype=np.int64, count=len(indices))


def flat_data_children(level, idx):
    """Per child of an Avalanche ``FlatData`` level, the items ``idx`` (an int64 array)
    that fall in it: yields ``(child, positions into idx, indices local to the child)``.

    Why: Avalanche 0.6 maps an item to a child only one item at a time
    (``FlatData._get_idx``, called by ``__getitem__``), from the private
    ``_indices`` (None: identity), ``_cumulative_sizes`` and ``_datasets``; it has
    no public, batched way. This is the same lookup for a whole index array.
    """
    import numpy as np

    if getattr(level, "_indices", None) is not None:
        idx = index_array(level._indices)[idx]
    ends = np.asarray(level._cumulative_sizes, dtype=np.int64)
    which = np.searchsorted(ends, idx, side="right")
    for k, child in enumerate(level._datasets):
        sel = np.flatnonzero(which == k)
        if len(sel):
            yield child, sel, idx[sel] - (ends[k - 1] if k else 0)


def transform_groups(level) -> list:
    """The transform groups a flat-data level applies to what its child returns, in the
    order it applies them: the frozen groups, then the others (each maps a group name,
    such as ``"train"``, to a transform).

    Why: Avalanche 0.6 has no public read of a level's transforms: they are its
    private ``_frozen_transform_groups`` and ``_transform_groups`` (either may be
    absent or None).
    """
    out = []
    for name in ("_frozen_transform_groups", "_transform_groups"):
        groups = getattr(level, name, None)
        if groups is not None:
            out.append(groups)
    return out


def dataset_flat_data(ds) -> tuple:
    """``(root, group)``: the root of an ``AvalancheDataset``'s flat-data tree and the name
    of its current transform group.

    Why: Avalanche 0.6 fetches items only one at a time; the fast data path walks
    the same tree for all items at once (:func:`flat_data_children`). The tree is
    the private ``_flat_data``, the group its private ``_transform_groups.current_group``.
    """
    flat = ds._flat_data
    return flat, flat._transform_groups.current_group


def item_attributes(ds) -> list:
    """The data attributes an ``AvalancheDataset`` appends to each item after ``(x, y)``
    (the task labels), in item order.

    Why: Avalanche 0.6 lists them only in the private ``_data_attributes`` (name ->
    ``DataAttribute``, appended when ``use_in_getitem``).
    """
    return [da for da in ds._data_attributes.values() if da.use_in_getitem]


def epoch_loader(loader):
    """The torch ``DataLoader`` (with its batch sampler) that a ``MultiDatasetDataLoader``
    iterates this epoch, its samplers built exactly as its ``__iter__`` builds them.

    Why: Avalanche 0.6 builds that loader (one sampler per dataset, oversampling,
    the generator) only inside ``__iter__``, through the private ``_get_loader()``;
    the fast data path replays its batch sampler, so that batches and the random
    stream stay Avalanche's.
    """
    return loader._get_loader()

