"""Torch networks (ResNet18 embedder, FAN head), datasets, training, evaluation and ONNX export."""
