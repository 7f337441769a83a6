"""`python -m finetune ARGS` is `assistant finetune ARGS`: the form torchrun users know from nanoGPT,
`torchrun --nproc-per-node N -m finetune CORPUS ...`."""

import sys

from assistant.cli import main

sys.argv[1:1] = ["finetune"]
main()
