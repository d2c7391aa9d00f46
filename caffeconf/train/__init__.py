"""Solver + flat Net -> trained weights and snapshots, with Caffe's semantics on the PyTorch runner.

solver prototxt -> `settings` (SolverParameter, paths resolved) -> `loop.Trainer`, which feeds the
net from `data` sources, applies `solvers` updates at `lr_policy` rates, and writes snapshots
through caffe.solverstate. `distributed` runs the same loop in several processes.
"""
