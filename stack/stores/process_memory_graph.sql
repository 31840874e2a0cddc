-- SAP_LLM's process memory graph as the release gates read it: the historical documents it learned from, one
-- embedding per document, and the relationships between documents (same business partner, in time order).
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    document_type TEXT NOT NULL,
    partner TEXT NOT NULL,
    api TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE INDEX documents_by_partner ON documents (partner);
CREATE TABLE embeddings (
    document_id INTEGER PRIMARY KEY REFERENCES documents (id),
    dimensions INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE relationships (
    source_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (source_id, target_id, kind)
);
CREATE INDEX relationships_by_target ON relationships (target_id);
