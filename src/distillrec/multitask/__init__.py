"""Multi-task (CTR/CVR) models and their distillation: ESMM over a shared or MMoE bottom (`esmm.py`), the
training objective with its knowledge-distillation terms (`objective.py`), training and evaluation
(`train.py`). `stages/multitask.py` runs the whole comparison."""
