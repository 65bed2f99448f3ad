"""Training data: dataset readers, the aligned-crop cache, loading into tensors, augmentations and packs for a GPU box."""
