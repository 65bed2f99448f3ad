"""Aligned crops to emotion probabilities: model cards, ONNX Runtime sessions, the embedder, the heads and the per-track
recognizer."""
