"""M-Station: hardware-in-the-loop camera test and calibration station."""

__version__ = "0.1.0"
