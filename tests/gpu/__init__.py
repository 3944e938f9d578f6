"""GPU paths on CPU-only machines: a fake libcuda.so, stand-in frameworks, real probe runs."""
