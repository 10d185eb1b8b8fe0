"""The study's fourth application, boundary segmentation, on polyp frames (notebook 07).

The study segmented by classifying the patch around each pixel into three classes (background and two
boundaries); here the classes are background / polyp boundary band / polyp interior, and the polyp
region is read off the dense class map. The frames, splits by sequence and field of view come from
:mod:`helpers.detection.video`, the runs' shared frame fields and network from :mod:`helpers.detection.frame_runs`,
dense maps from :mod:`helpers.detection.maps`, training, rates and the store from the core (never detection's own
experiment or report).

Modules, in dependency order:

- ``labels``      three-class labels of a mask, and the mask read back off a class map
- ``scores``      Dice, IoU and the mean boundary distance of predicted vs true masks, per frame
- ``maps``        training windows around pixels of each class, dense class maps, predicted masks
- ``experiment``  one segmentation run of a sweep (:class:`~helpers.segmentation.experiment.SegRunConfig`)
- ``report``      a segmentation results table summarised: intervals over seeds and test sequences,
                  paired differences between arms, the study's printed boundary errors beside them
- ``plots``       the notebook's figures
"""
