"""What training and writing agree on about a model, below both: its directory, its kind, how it draws a token.

`contract.modeldir` owns the model directory (config.json read into a `Card`,
and every file a run writes); `contract.registry` lists the model kinds by
name and finds their packages under `kinds/`; `contract.sampling` draws the
next token the same way in training's samples and in the generation API, and
says what a kind's decoder gives. The training core (`finetune`) and the kinds
(`kinds`) both stand on this package, so neither needs the other's.
"""
