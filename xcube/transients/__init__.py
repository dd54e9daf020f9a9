"""Transient search (EXOD method): bad time intervals, bad frames, background
model, Poisson Bayes factors, detections, simulations.

Submodules are imported on use (``from xcube.transients import bayes``) to keep
``import xcube`` light.
"""
