"""The charts: one definition in physical units, used to print, to render in the twin, to detect."""
