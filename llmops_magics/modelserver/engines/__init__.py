"""llmops_magics.modelserver.engines."""
