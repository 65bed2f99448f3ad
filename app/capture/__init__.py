"""Frames in: video files, GIFs, cameras and streams behind one `FrameSource` interface, and the threads that hand
frames on (a bounded read-ahead for files, a one-slot latest frame for live sources)."""
