"""Pure measurement and calibration maths: arrays and plain parameters in, numbers and profiles out.

Never imports ``station`` and never talks to a device (DESIGN 1).
"""
