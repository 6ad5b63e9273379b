"""The twin: a physical simulation of the bench that serves the same wires as the real one.

Never imports ``calibration``: its ground truth must stay independent of the code it checks.
"""
