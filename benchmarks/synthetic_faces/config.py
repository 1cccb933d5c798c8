"""How the synthetic faces vary (:class:`SyntheticConfig`), and the manifest that marks a
folder as this generator's output."""

from __future__ import annotations

from dataclasses import dataclass

#: Name of the manifest that marks a folder as this generator's output.
MANIFEST = "synthetic.json"
#: Bumped whenever the pictures change for the same parameters (invalidates reuse).
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticConfig:
    """How faces and expressions vary (the data set's difficulty).

    Defaults were tuned so that a small CNN trained on all 21 classes with
    subject-disjoint folds is clearly above chance and clearly below 100%
    (4 conv layers, 64 px, Adam 1e-3, 15 epochs: 76% and 78% test accuracy on
    two folds of 230 subjects; the AU table alone caps it near 86%, because
    close classes differ only in secondary AUs).
    """

    images_per_expression: int = 1  # CFEE: one image per subject and expression
    secondary_prob: float = 0.5  # chance a subject uses a secondary AU (Table 1: ~25-67% for basic ones)
    primary_range: tuple[float, float] = (0.7, 1.0)  # intensity of a primary AU
    secondary_range: tuple[float, float] = (0.25, 0.6)  # intensity of a used secondary AU
    leak: float = 0.06  # largest intensity of an AU outside the expression's pattern
    noise: float = 1.0  # scale of the per-subject pixel noise level
    supersample: int = 2  # draw at this multiple of the size, then downsample
    jpeg_quality: int = 90

    def check(self) -> SyntheticConfig:
        if self.images_per_expression < 1:
            raise ValueError(f"images_per_expression={self.images_per_expression}: must be >= 1")
        if not 0.0 <= self.secondary_prob <= 1.0:
            raise ValueError(f"secondary_prob={self.secondary_prob}: must be in [0, 1]")
        if self.supersample < 1 or not 1 <= self.jpeg_quality <= 95:
            raise ValueError("supersample must be >= 1 and jpeg_quality in 1..95")
        return self
