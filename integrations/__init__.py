"""Integrations of hashmem with RAG frameworks: LangChain (``langchain``) and LlamaIndex (``llamaindex``)."""
