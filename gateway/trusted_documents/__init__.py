"""Trusted documents and automatic persisted queries (README, Trusted documents):

- `manifest`: the operations our apps send (`examples/`), and the manifest made from them;
- `persisted`: the store of documents registered by hash (APQ), Redis or in process;
- `resolution`: a request's parameters (`documentId`, `extensions.persistedQuery`,
  `query`) turned into the document to run, or refused;
- `enforcement`: the same policy on every transport (WebSocket too), at execution.
"""
