"""The study workflow on a session's rows: markers, epochs, interval summaries, a neutral baseline, and LSL streaming."""
