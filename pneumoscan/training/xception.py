"""A flat Xception classifier (no nested base model, so Grad-CAM reaches its last activation).

The exit flow runs at output stride 16 instead of 32, as DeepLab's atrous Xception does: block 13
keeps its resolution (its pooling and residual convolution lose their stride) and block 14's
separable convolutions are dilated by 2, so the ImageNet weights see the same neighbourhoods.
At 128 px the last activation is then 8x8 rather than 4x4, and Grad-CAM on it stays exact and
analytic (global average pooling -> dense) while showing four times as many cells.

Two logits share the pooled features: pneumonia (column 0) and, for pneumonia images, viral
rather than bacterial (column 1).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import keras

LAST_CONV_LAYER = "block14_sepconv2_act"
LOGIT_LAYER = "logits"
PNEUMONIA, VIRAL = 0, 1  # columns of the logits layer
WEIGHTS_PACKAGE = "pneumonia_model_package"


def packaged_imagenet_model() -> Path:
    """The .keras file of pneumonia-model-package, whose frozen `xception` holds ImageNet weights."""
    import importlib.util

    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "ImageNet weights: install `pneumonia-model-package==0.3.0 --no-deps` "
            "or pass --base-weights imagenet"
        )
    found = glob.glob(os.path.join(spec.submodule_search_locations[0], "trained_models", "*.keras"))
    if not found:
        raise FileNotFoundError(f"no .keras model inside {WEIGHTS_PACKAGE}")
    return Path(found[0])


def load_base_weights(base: keras.Model, source: str) -> None:
    """Copy ImageNet weights into `base` from the packaged model, a .keras file or a weights file."""
    path = packaged_imagenet_model() if source == "package" else Path(source)
    if path.name.endswith(".weights.h5"):
        base.load_weights(path)
        return
    donor = keras.models.load_model(path, compile=False).get_layer("xception")
    for layer in base.layers:
        if layer.weights:
            layer.set_weights(donor.get_layer(layer.name).get_weights())


def _at_output_stride_16(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A copy of `layer`, with block 13's strides removed and block 14 dilated by 2."""
    config = layer.get_config()
    if layer.name == "block13_pool" or (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.SeparableConv2D)
        and config["filters"] == 1024
    ):
        config["strides"] = (1, 1)
    if layer.name.startswith("block14_sepconv") and isinstance(layer, keras.layers.SeparableConv2D):
        config["dilation_rate"] = (2, 2)
    return layer.__class__.from_config(config)


def build_model(base_weights: str = "package", dropout: float = 0.3, input_size: int = 128) -> keras.Model:
    """Xception trunk at output stride 16 + global average pooling + dropout + two logits.

    `base_weights`: "imagenet" (download, needs internet), "package" (pneumonia-model-package),
    "none", or a path to a .keras model with an `xception` layer or a `.weights.h5` file.
    """
    standard = keras.applications.Xception(
        include_top=False,
        weights="imagenet" if base_weights == "imagenet" else None,
        input_shape=(input_size, input_size, 3),
    )
    if base_weights not in ("imagenet", "none"):
        load_base_weights(standard, base_weights)
    base = keras.models.clone_model(standard, clone_function=_at_output_stride_16)
    base.set_weights(standard.get_weights())
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    dropped = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logits = keras.layers.Dense(2, name=LOGIT_LAYER)(dropped)
    return keras.Model(base.input, logits, name="pneumoscan_xception")


def submodel_from(model: keras.Model, cut_layer: str, output_layer: str | None = None) -> keras.Model:
    """The part of `model` after `cut_layer` (up to `output_layer`), sharing its layers, fed by a new input.

    Training runs the frozen part once and caches its output; this sub-model then trains on
    the cache, and because its layers are the full model's, the full model is what is trained.
    """
    cut = model.get_layer(cut_layer).output
    start = keras.Input(shape=cut.shape[1:], name=f"{cut_layer}_features")
    tensors = {id(cut): start}
    after_cut = False
    for layer in model.layers:
        if layer.name == cut_layer:
            after_cut = True
            continue
        if not after_cut:
            continue
        node = layer._inbound_nodes[0]
        inputs = [tensors[id(t)] for t in node.arguments.keras_tensors]
        output = layer(inputs if len(inputs) > 1 else inputs[0])
        tensors[id(node.output_tensors[0])] = output
        if layer.name == output_layer:
            break
    end = model.get_layer(output_layer).output if output_layer else model.output
    return keras.Model(start, tensors[id(end)], name=f"after_{cut_layer}")


def trunk_until(model: keras.Model, cut_layer: str) -> keras.Model:
    """The frozen part of `model` up to and including `cut_layer`."""
    return keras.Model(model.input, model.get_layer(cut_layer).output, name=f"until_{cut_layer}")


def first_trained_block(cache_layer: str) -> int:
    """The first Xception block after `cache_layer` (`add` ends block 2, `add_N` ends block N + 2)."""
    return 3 if cache_layer == "add" else int(cache_layer.removeprefix("add_")) + 3
