"""The int8 ONNX export: onnxruntime's pre-processing advice is not printed on a user's first run."""

import logging

from hashmem.memory.embedding import onnx as embed_onnx


def test_preprocessing_advice_is_dropped_and_nothing_else(caplog):
    with caplog.at_level(logging.WARNING), embed_onnx._without_preprocessing_advice():
        logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
        logging.warning("Please consider pre-processing before quantization. See ...")
        logging.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]
    logging.warning("Please consider to run pre-processing before quantization.")  # outside: untouched
    assert len(caplog.records) == 2
    assert not any(isinstance(f, embed_onnx._DropPreprocessingAdvice) for f in logging.getLogger().filters)
