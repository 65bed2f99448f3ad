"""Tools that drive the real window: the window benchmark and the README screenshot."""
