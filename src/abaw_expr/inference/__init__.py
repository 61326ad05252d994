"""Inference: loading a checkpoint safely (``checkpoint``), the backbone's engines (eager,
compiled, ONNX, int8: ``engine``, ``int8``), export to ONNX (``export``), per-frame
probabilities from overlapping windows (``probabilities``), the device (``device``) and a
checkpoint's AU thresholds (``thresholds``). No Lightning, no ``torch._dynamo`` at import."""
