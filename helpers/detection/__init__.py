"""The study's polyp-detection application (notebook 05), on top of the classification core.

Modules, in dependency order:

- ``froc``        FROC scoring: polyps as connected mask regions, candidates matched to them, curves and bands
- ``video``       polyp folders: finding, indexing and loading frames and masks, splits by sequence, the field
                  of view, and which frames a run reads
- ``patches``     training patches around polyps (three scales, shifts, eight flips/rotations) and background
- ``maps``        detection: multi-scale probability maps, candidates, rescoring, hard-negative mining
- ``frame_runs``  what every run on a polyp folder shares (detection and segmentation): the frame fields of a
                  run's identity, the bounded frames split by sequence, the patch classifier at its depth, the
                  engine's settings for one pass, the saved weights
- ``experiment``  one detection run of a sweep (:class:`~helpers.detection.experiment.PolypRunConfig`): train,
                  mine hard negatives, choose on validation FROC, score every test frame
- ``report``      a detection results table summarised: FROC bands, sensitivity tables, the hard-negative
                  round, the study's polyp claim in plain words
- ``plots``       the notebook's figures
- ``data``        polyp folders a newcomer can get (Kvasir-SEG, synthetic folders) and their command line:
                  ``python -m helpers.detection.data find|fetch-kvasir|synthetic|check``
"""
