"""Device drivers: one small Protocol per device kind, one class per concrete driver."""
