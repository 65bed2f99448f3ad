"""What the window shows, as plain Qt-free state (view models): tested without a display."""
