"""Sentence embeddings: the model files (``models``, ``packaged``), the embedder (``embedder``), its int8 ONNX path (``onnx``)."""
