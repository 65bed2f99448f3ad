"""Research signals beside the emotion reading: 52 blendshapes, head pose and a reliability score per face."""
