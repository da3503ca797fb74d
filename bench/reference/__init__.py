"""A PyTorch reference for primer: its model (model.py), every objective's loss (objectives.py),
its optimisation (optim.py), and the parity runs that train it beside primer on the same batches
(train.py, parity.py) with primer's masks compared to transformers' (masking.py), and ELECTRA's
discriminator AUC on a recorded run (electra_auc.py).
See docs/parity.md."""
