"""Faces in a frame: detection (MediaPipe face mesh), stable track ids, 5-point alignment to the network's crop, and the
cheap gate that skips the mesh on empty frames."""
