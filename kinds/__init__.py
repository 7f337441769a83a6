"""Model kinds: one package each, holding its training and its inference side by side, and one registry entry.

`contract.registry` lists the kinds; `contract.modeldir` owns the model directory
every kind writes and every front end reads. Importing this package (or the
registry, or a kind's `options`) imports no torch, so `assistant --help` stays
fast; a kind's `train` and `infer` modules are imported when they are used.
"""
