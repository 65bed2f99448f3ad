"""From a trained checkpoint to shipped files: ONNX export, int8 quantization, calibration, cost, warm starts, the
blendshape network's conversion and the release driver (ship)."""
