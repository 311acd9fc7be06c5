"""Multi-file edits (issue 16): the request's prompt (``prompt``), the strict parser of the
model's answer into per-file operations (``answer``), each operation resolved with the apply
pipeline against the file's text the client sent (``resolve``), and the stream's events
(``events``). Plain data: no Qt, no gRPC, no model."""
