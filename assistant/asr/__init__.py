"""Our own streaming recogniser over the acoustic model shipped inside viet-asr 0.1.0.dev11.

* :mod:`assistant.asr.model`: the ONNX graph and token table, read from the data symbols of
  ``vietasr/_native/libvietasr.so`` at run time and checked against pinned SHA-256 digests.
* :mod:`assistant.asr.features`: Kaldi log-mel filterbanks (kaldi-native-fbank), streaming.
* :mod:`assistant.asr.decoder`: CTC decoders: digits (counting grammar, length prior, N-best,
  per-word scores), yes/no (answer words and a filler), and plain greedy decoding.
* :mod:`assistant.asr.engine`: :class:`OnnxRecognizer` (the ``Recognizer`` port: one
  onnxruntime session shared by every call) and :class:`OnnxSession` (one per call).

Engines are heavy: import :mod:`assistant.asr.engine` only when this recogniser is chosen.
"""

from __future__ import annotations

__all__ = ["OnnxRecognizer", "OnnxSession"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from assistant.asr import engine  # onnxruntime only when asked for

        return getattr(engine, name)
    raise AttributeError(name)
