"""Feature-based exemplar selection without the Avalanche 0.6 constructor that binds a
fixed model (used by plugins/method/selection.py)."""

from __future__ import annotations


class LiveFeatureOrdering:
    """Mixin, listed before Avalanche's ``HerdingSelectionStrategy`` or
    ``ClosestToCenterSelectionStrategy``: their ordering, of features the subclass
    computes from the strategy's current model (its ``features(strategy, data)``: (N, D)).

    Why: in Avalanche 0.6 their ``__init__`` wraps a fixed model in a
    ``FeatureExtractorBackbone``: a forward hook bound at construction, before a
    plugin has a model, and lost when ``IncrementalClassifier`` replaces its
    ``Linear`` on growth; its ``make_sorted_indices`` also leaves the whole model in
    eval mode. So the base ``__init__`` is not called (its
    ``make_sorted_indices_from_features`` needs none of its state) and
    ``make_sorted_indices`` is replaced.
    """

    def __init__(self, layer_name: str | None = None):
        # Avalanche's __init__ (which builds a FeatureExtractorBackbone on a fixed model) is
        # deliberately not called: the model is read from the strategy at selection time.
        self.layer_name = layer_name

    def make_sorted_indices(self, strategy, data) -> list[int]:
        feats = self.features(strategy, data)
        return [int(i) for i in self.make_sorted_indices_from_features(feats)]


