"""Loss landscapes: error surfaces around trained weights and their smoothness and convexity."""
