"""One-off measurement drivers: the head comparison and corruption probe, the domain probe, the FAER ablation and the
blendshape sanity check."""
