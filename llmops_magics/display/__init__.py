"""llmops_magics.display."""
