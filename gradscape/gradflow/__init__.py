"""Gradient flow: the gradient transition matrix J_t = ∂s_t/∂s_{t−1} and its spectral radius."""
