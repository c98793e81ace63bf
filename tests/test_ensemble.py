"""Ensemble members merged into one graph: the served logit is the members' mean, and the NumPy
Grad-CAM on the merged activation is the GradientTape Grad-CAM of that mean."""

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="training needs requirements-dev.txt")
tf = pytest.importorskip("tensorflow", reason="training needs requirements-dev.txt")

from pneumoscan.gradcam import gradcam  # noqa: E402
from pneumoscan.training.ensemble import merge_members  # noqa: E402
from pneumoscan.training.publish import tape_gradcam  # noqa: E402
from pneumoscan.training.xception import LAST_CONV_LAYER, LOGIT_LAYER, build_model  # noqa: E402


@pytest.fixture(scope="module")
def members_and_merged():
    """Two differently initialised members (different heads too) and their merge, built once:
    the merge is what publish builds from freshly loaded checkpoints."""
    models = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = build_model("none", input_size=71)
        kernel, bias = model.get_layer(LOGIT_LAYER).get_weights()
        model.get_layer(LOGIT_LAYER).set_weights([kernel * seed, bias + seed])
        models.append(model)
    return models, merge_members(models)


def test_merged_logit_is_the_mean_of_the_members(members_and_merged):
    members, merged = members_and_merged
    x = np.random.default_rng(0).uniform(-1, 1, (4, 71, 71, 3)).astype(np.float32)
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    assert merged.predict(x, verbose=0) == pytest.approx(expected, abs=1e-4)
    assert merged.get_layer(LAST_CONV_LAYER).output.shape[-1] == 2 * 2048


def test_numpy_gradcam_on_the_merged_activation_is_the_tape_gradcam_of_the_mean(members_and_merged):
    _, merged = members_and_merged
    x = np.random.default_rng(1).uniform(-1, 1, (71, 71, 3)).astype(np.float32)
    activation = keras.Model(merged.input, merged.get_layer(LAST_CONV_LAYER).output)(x[None])[0]
    kernel = merged.get_layer(LOGIT_LAYER).get_weights()[0].reshape(-1)
    reference = tape_gradcam(merged, x)
    assert reference.max() == pytest.approx(1.0) and (reference < 0.5).any()
    assert gradcam(np.asarray(activation), kernel) == pytest.approx(reference, abs=1e-4)
