"""Training: the core loop, its model kinds, and the model directory they write.

Import `finetune.run.finetune` for the whole job; this package imports torch,
so the CLI imports it only inside the `finetune` command.
"""
