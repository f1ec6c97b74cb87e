"""The bundled character language model is textgenrnn's pretrained network, on TensorFlow and on JAX.

Held-out text: the last 20% of Python's documentation (`pydoc_data.topics`); the unigram baseline counts characters on
the first 80%. Run with `-s` to see the numbers.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sparse_ae_tf.charlm import PROSE, doc_text, encode, load_char_lm, next_char_scores, text_windows, unigram_cross_entropy

MEASURE = """
import json, numpy as np, keras
from sparse_ae_tf.charlm import *
t = doc_text(); cut = int(0.8 * len(t))
x, y, _ = text_windows(t[cut:], 1500, seed=3)
xa, ya, _ = text_windows(t[cut:], 1500, prose=False, seed=3)
lm = load_char_lm()
print(json.dumps({"backend": keras.backend.backend(), "prose": next_char_scores(lm, x, y), "all": next_char_scores(lm, xa, ya)}))
"""


@pytest.fixture(scope="module")
def tensorflow_scores():
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def baselines():
    t = doc_text(); cut = int(0.8 * len(t))
    train = encode(t[:cut])
    _, y, _ = text_windows(t[cut:], 1500, seed=3)
    _, ya, _ = text_windows(t[cut:], 1500, prose=False, seed=3)
    prose_train = train[np.isin(train, encode("".join(sorted(PROSE))))]
    return unigram_cross_entropy(prose_train, y), unigram_cross_entropy(train, ya)


def test_pretrained_far_better_than_unigram(tensorflow_scores):
    s, (uni_prose, uni_all) = tensorflow_scores, baselines()
    print(f"\nTensorFlow: prose acc {s['prose']['accuracy']:.3f} CE {s['prose']['cross_entropy']:.3f} (unigram {uni_prose:.3f}); "
          f"all acc {s['all']['accuracy']:.3f} CE {s['all']['cross_entropy']:.3f} (unigram {uni_all:.3f})")
    assert s["backend"] == "tensorflow"
    assert s["prose"]["accuracy"] > 0.5 and s["prose"]["cross_entropy"] < 1.7, s  # measured: about 0.57 and 1.42
    assert s["prose"]["cross_entropy"] < uni_prose - 1.0, (s, uni_prose)  # unigram about 2.9
    assert s["all"]["accuracy"] > 0.35 and s["all"]["cross_entropy"] < uni_all - 0.7, (s, uni_all)  # about 0.47, 2.2 vs 3.3


def test_same_model_on_jax(tensorflow_scores):
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    jax = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nJAX: prose acc {jax['prose']['accuracy']:.3f} CE {jax['prose']['cross_entropy']:.3f}")
    assert jax["backend"] == "jax"
    for part in ("prose", "all"):
        assert abs(jax[part]["cross_entropy"] - tensorflow_scores[part]["cross_entropy"]) < 2e-3, (jax, tensorflow_scores)
        assert abs(jax[part]["accuracy"] - tensorflow_scores[part]["accuracy"]) < 0.01, (jax, tensorflow_scores)


def test_without_the_cudnn_conversion_it_is_not_the_model():
    "The conversion matters: the raw cuDNN kernels loaded as they are give a far worse cross-entropy."
    import h5py
    from sparse_ae_tf.charlm import char_lm
    import importlib.resources
    lm, raw = load_char_lm(), char_lm()
    raw.set_weights(lm.get_weights())
    with importlib.resources.as_file(importlib.resources.files("sparse_ae_tf").joinpath("assets", "textgenrnn_weights.hdf5")) as p, h5py.File(p) as f:
        for name in ("rnn_1", "rnn_2"):
            g = f[name][name]; b = g["bias:0"][()]
            raw.get_layer(name).set_weights([g["kernel:0"][()], g["recurrent_kernel:0"][()], b[:512] + b[512:]])
    t = doc_text(); x, y, _ = text_windows(t[int(0.8 * len(t)):], 500, seed=4)
    good, bad = next_char_scores(lm, x, y), next_char_scores(raw, x, y)
    assert bad["cross_entropy"] > good["cross_entropy"] + 2, (good, bad)
