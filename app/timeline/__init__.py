"""A session's rows: the export schema, run metadata, journal files, CSV/JSON formats, the summary, the recorder and the
plot. Writes through app.durable; knows nothing of the study or the pipeline."""
