"""Training: the core loop every model kind (kinds/) trains through, and what a run writes.

Import `finetune.run.finetune` for the whole job; this package imports torch,
so the CLI imports it only inside the `finetune` command.
"""
