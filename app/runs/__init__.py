"""Drivers: the command line, headless replay of a file or folder (workers, Ray), live recording, and crash recovery."""
