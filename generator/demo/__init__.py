"""The demo engine: the context demos call, plots, ONNX helpers, cache, worker pool."""
