"""The window's slow or stateful actions, without widgets: recording sessions and study markers."""
