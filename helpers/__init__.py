"""ftlab helpers: everything the notebooks call.

Modules, one concern each, by layer (imports point one way: tests/test_architecture.py fails on an import
cycle):

Foundations
- ``budget``      the training budget (``TrainBudget``), defined once: held by every run config and profile part
- ``profiles``    run profiles (fast / classroom / full), one named part per application
- ``paths``       the project's root, the reports folder, the notebooks' data set and network
- ``schema``      the result row's shared names (``val_score``, ``val_metric``, ``lr_used``) and the map from older ones
- ``env``         device choice, seeding and a run's fixed CPU threads, the environment report
- ``types``       shared type aliases (``ArrayLike``)
- ``recipe``      the paper's training recipe, written once (momentum, rate decay, head and bias multiples)

Data
- ``catalog``     MedMNIST metadata (names, URLs, MD5s, labels) from the ``medmnist`` package
- ``download``    verified, atomic downloads
- ``datasets``    the containers: ``Split`` (uint8 images + labels) and ``DataSet`` (train / val / test)
- ``loading``     files into data sets: MedMNIST, own ``.npz``, image folders (multi-label too)
- ``preflight``   ``make data``: find or fetch what the notebooks need, or stop at once saying what is missing
- ``subsets``     nested stratified training-set fractions, validation held out of a budget
- ``batches``     uint8 tensors into float batches on the device
- ``augment``     the paper's augmentation, on batches on the device

Models and training
- ``weights``     real ImageNet weights, loaded safely
- ``models``      AlexNet (paper layer names), ResNet-18, EfficientNet-Lite0, any timm network, initialisation
- ``finetune``    depth ladders, freezing, per-stage parameter groups
- ``metrics``     point estimates: AUC, accuracy, sensitivity at a fixed FPR, collapsed scores
- ``bootstrap``   confidence intervals and paired tests for those metrics (vectorised resampling)
- ``train``       the one training engine (budgets in steps, BatchNorm modes, caching, guards), predict, evaluate
- ``tboard``      TensorBoard: the engine's live curves, a results store exported for the HParams view
- ``tuning``      procedures that loop over the engine: fit-and-test, the rate search, auto-depth
- ``modelcard``   saved models: state dict + JSON model card, reloaded safely

Experiments and results
- ``store``       results stores: one atomic record per run, shared by any number of processes
- ``runner``      the generic sweep machinery: run identities and hashes, the one grid mapping, the one run
                  skeleton every application uses (``Application``, ``execute``), resumable sweeps on any
                  executor, rates tuned on validation data
- ``experiments`` classification as an application: one sweep run, the fine-tuning ladder, BatchNorm modes
- ``sweep``       the sweep's command line: ``ftlab sweep plan|run|summary|tensorboard``
- ``powerlaw``    learning-curve power-law fits
- ``choice``      the one rule that chooses a depth on validation (explicit pool, ties at the set's resolution)
- ``tables``      a results table read (list columns, older names, one row per run) and its shape (strategies in order)
- ``convergence`` iterations to a share of the best validation AUC, runs still improving at their last step
- ``analysis``    the statistics: tests, intervals and Holm, gaps to scratch, best strategy per size, features or scale
- ``learning_curves`` power laws per strategy and the size at which scratch would catch up
- ``verdicts``    the words every verdict is said in (holds / does not hold / not decidable at this budget)
- ``findings``    the study's findings in plain words
- ``yardsticks``  published MedMNIST v2 results to compare against

Presentation
- ``plots``       figures of the classification notebooks
- ``widgets``     ipywidgets explorers (controls + one Output area)
- ``grading``     the graded exercises' checks (``with grading.check(...)``: "not done", wrong, passed)
- ``classroom``   ``make student`` and autograding with nbgrader: student copies, one autograde round
- ``kernels``     Jupyter kernels on IPC sockets of their own (two test workers start notebooks at once)
- ``advise``      ``ftlab advise``: the three questions on the user's own images, a sweep and a report with a
                  recommendation in plain words

The polyp-detection application (notebook 05) is its own subpackage, ``detection`` (``video``, ``patches``,
``maps``, ``froc``, ``experiment``, ``report``, ``plots``, ``data``: see its ``__init__``); it builds on the core (the
engine, the runner, the store) and the core never imports it, except ``preflight``, which looks for the
polyp folder notebooks 05 and 07 need. The segmentation application (notebook 07), ``segmentation`` (``labels``,
``scores``, ``maps``, ``experiment``, ``report``, ``plots``), builds on detection's frames, splits and maps and on the
core; ``applications`` (the paper's finding 3 across classification, detection and segmentation, read from their
stores) sits on top of all three. Detection never imports segmentation. ``cli`` (``ftlab``, the one command line)
runs each module's ``main`` by name: it imports none of them at its top.
"""

__version__ = "0.1.0"
