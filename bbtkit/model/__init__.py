"""The model layer, the only place that opens the box: loading (the embedded default, hub names, tiny test
models, shape twins), templates, prompt injection, the batched forward pass and the scales a prompt meets."""
