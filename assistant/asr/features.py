"""Log-mel filterbank features the way the model was trained (see ../shared/notes/asr.md).

Kaldi filterbanks from kaldi-native-fbank: 16 kHz, 25 ms povey window, 10 ms shift, 80 mel bins
from 20 Hz to Nyquist, pre-emphasis 0.97, DC removal, ``snip_edges`` on, no dither, energy floor
0, computed on int16-scale samples. Global CMVN is inside the model, so nothing is normalised
here.
"""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import numpy.typing as npt

from assistant.core.ports import PCM

SAMPLE_RATE = 16000
NUM_BINS = 80
#: Samples per frame and per shift at 16 kHz.
FRAME_LENGTH = 400
FRAME_SHIFT = 160

Features = npt.NDArray[np.float32]


def fbank_options() -> knf.FbankOptions:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.dither = 0.0
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = NUM_BINS
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0  # 0: Nyquist
    opts.energy_floor = 0.0
    opts.use_energy = False
    return opts


def num_frames(num_samples: int) -> int:
    """Frames produced for ``num_samples`` samples (``snip_edges``: whole windows only)."""
    return 0 if num_samples < FRAME_LENGTH else 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


class FbankStream:
    """Incremental features: ``accept`` returns the frames completed by the new samples."""

    def __init__(self) -> None:
        self._fbank = knf.OnlineFbank(fbank_options())
        self._taken = 0
        self.samples = 0

    def accept(self, pcm: PCM) -> Features:
        if len(pcm):
            self._fbank.accept_waveform(SAMPLE_RATE, np.asarray(pcm, dtype=np.float32))
            self.samples += len(pcm)
        return self._take()

    def finish(self) -> Features:
        """Flush (with ``snip_edges`` no partial window is ever produced)."""
        self._fbank.input_finished()
        return self._take()

    def _take(self) -> Features:
        ready = self._fbank.num_frames_ready
        if ready <= self._taken:
            return np.zeros((0, NUM_BINS), dtype=np.float32)
        frames = np.stack([self._fbank.get_frame(i) for i in range(self._taken, ready)])
        self._fbank.pop(ready - self._taken)
        self._taken = ready
        return frames.astype(np.float32, copy=False)


def compute_fbank(pcm: PCM) -> Features:
    """Features of a whole utterance at 16 kHz."""
    stream = FbankStream()
    first = stream.accept(pcm)
    rest = stream.finish()
    return np.concatenate([first, rest]) if len(rest) else first
