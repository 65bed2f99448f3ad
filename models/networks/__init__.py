"""The torch networks: FAN (ResNet18 embedder + attention head), the temporal heads and their registry, FAER, FMPN and
the face-identity teachers."""
