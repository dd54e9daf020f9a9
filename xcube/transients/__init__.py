"""Transient search (EXOD method): bad time intervals, bad frames, background
model, Poisson Bayes factors, detections (simulations: :mod:`xcube.simulate`).

Submodules are imported on use (``from xcube.transients import bayes``) to keep
``import xcube`` light.
"""
