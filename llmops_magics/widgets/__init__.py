"""ipywidgets panels for the notebook adapter; each module imports ipywidgets itself, on first use."""
