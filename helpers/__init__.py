"""ftlab helpers: everything the notebooks call.

Modules, one concern each:

- ``profiles``    run profiles (fast / classroom / full) and project paths
- ``env``         device choice, seeding, the environment report
- ``catalog``     MedMNIST metadata (names, URLs, MD5s, labels) from the ``medmnist`` package
- ``download``    verified, atomic downloads
- ``data``        loading data sets (MedMNIST, own ``.npz``, image folders; multi-label too) into uint8 tensors
- ``preflight``   ``make data``: find or fetch what the notebooks need, or stop at once saying what is missing
- ``subsets``     nested stratified training-set fractions (within one image per class), validation held out of a budget
- ``augment``     the paper's augmentation, on batches on the device
- ``models``      AlexNet (paper layer names), ResNet-18, EfficientNet-Lite0, initialisation
- ``weights``     real ImageNet weights, loaded safely
- ``finetune``    depth ladders, freezing, parameter groups, auto-depth
- ``train``       the one training engine (budgets in steps, BatchNorm modes, rate tuning, guards)
- ``metrics``     AUC, accuracy, sensitivity at fixed FPR, bootstrap confidence intervals
- ``store``       results stores: one atomic record per run, shared by any number of processes
- ``experiments`` the resumable sweep runner (rates tuned on validation, process pools, Dask, submitit)
- ``sweep``       the command line: ``python -m helpers.sweep plan|run|summary``
- ``analysis``    learning-curve analysis
- ``plots``       figures
- ``widgets``     ipywidgets explorers (controls + one Output area)
- ``modelcard``   saved models: state dict + JSON model card, reloaded safely
- ``handout``     ``make student``: student copies of the notebooks without solution cells
- ``yardsticks``  published MedMNIST v2 results to compare against
- ``polyp``       polyp data, patches, field of view, multi-scale maps, candidates, hard negatives; ``froc`` scores detections
- ``polyp_data``  polyp folders a newcomer can get: Kvasir-SEG (download, check) and synthetic folders; its command line
- ``detection``   the polyp-detection experiment as sweep runs (FROC result rows, verdicts)
- ``datasets``    the Split / DataSet containers; ``batches`` slicing uint8 tensors into float batches
"""

__version__ = "0.1.0"
