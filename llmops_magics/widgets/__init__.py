"""ipywidgets panels (the adapters layer: the core never imports this package)."""
