"""The Milvus backend: the same interface on a Milvus server or cluster (``milvus://HOST:PORT/COLLECTION``)."""
