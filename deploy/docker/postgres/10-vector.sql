-- Run once, when the postgres service initialises its data volume: pgvector in Hearth's
-- database, so the documents' embedding column exists from the first migration on.
CREATE EXTENSION IF NOT EXISTS vector;
