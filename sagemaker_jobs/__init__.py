"""SageMaker entrypoints (processing, training, evaluation, inference) honouring the
container contracts (``/opt/ml/...``, ``SM_*``); each delegates to ``rankops``."""
