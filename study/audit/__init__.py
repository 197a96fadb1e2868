"""The paper audit: every numeric claim of the paper re-derived, with its verdict and noise label."""
