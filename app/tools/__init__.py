"""Measuring tools: the benchmark and its suites, and the ffmpeg clips and loopback streams they and the tests use."""
