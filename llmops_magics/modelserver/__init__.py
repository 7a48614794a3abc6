"""llmops_magics.modelserver."""
