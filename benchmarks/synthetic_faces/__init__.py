"""The built-in synthetic face data set, written in the CFEE layout.

Faces are drawn procedurally (numpy + Pillow, no download): every subject has
its own face (shape, skin tone, hair, eye spacing, brow and mouth geometry,
pose, lighting, noise), and every expression is rendered from facial action
units (AUs). Each basic and compound expression is a set of primary AUs plus
optional secondary AUs (Du, Tao & Martinez 2014, Table 1): a compound shares some
AUs of its basic components, not their union (docs/datasets.md). The output is
``<out>/<group>/Images<k>/EE_SSS_NNNN.jpg``, read by
:func:`cfer.benchmarks.readers.cfee.load_cfee` like the real CFEE. Results on it
say nothing about real faces; it exists so that everything runs and is tested
anywhere.

One job per module, each importing only those above it in this list:

- :mod:`~cfer.benchmarks.synthetic_faces.config`: :class:`SyntheticConfig` (how faces
  and expressions vary) and the manifest that marks a generated folder;
- :mod:`~cfer.benchmarks.synthetic_faces.action_units`: the AU table of every
  expression (:data:`AU_TABLE`, :class:`AUPattern`, :data:`AU_NAMES`);
- :mod:`~cfer.benchmarks.synthetic_faces.subjects`: one synthetic person
  (:class:`Subject`, :func:`random_subject`) and the AUs they show
  (:func:`action_units`, :func:`active_units`);
- :mod:`~cfer.benchmarks.synthetic_faces.render`: drawing a face from AU intensities
  (:func:`render_face`);
- :mod:`~cfer.benchmarks.synthetic_faces.masks`: each image's action-unit regions, the
  ground truth for attribution maps (:data:`AU_REGIONS`, :func:`read_au_masks`,
  :func:`load_region_masks` at the model's input size);
- :mod:`~cfer.benchmarks.synthetic_faces.writer`: writing a set in the CFEE layout with
  its masks and manifest (:func:`write_synthetic`), reading it back (:func:`synthetic`)
  and ``cfer synth``.

Why the folder is not named ``synthetic``: ``cfer.benchmarks.synthetic`` is the
public function that reads the set (docs/design.md); a subpackage of that name would
replace it as an attribute of :mod:`cfer.benchmarks` once imported.
"""
