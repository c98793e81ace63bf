"""Does the served heatmap point at what the model uses? Deletion and insertion (Petsiuk et al.,
BMVC 2018) against three maps that know nothing, and a model-randomisation check (Adebayo et
al., NeurIPS 2018).

`python -m pneumoscan.training.faithfulness [--model-dir DIR] [--on DIR] [--checkpoint FILE]`

Deletion replaces the image's pixels in the map's order, most salient first, in 10 steps, by the
mean training NORMAL X-ray ("what a healthy chest looks like here"); insertion starts from that
healthy chest and puts the image's pixels back in the same order. The area under the curve of
the served (calibrated) probability is taken: lower is more faithful for deletion, higher for
insertion. Each map is compared with the served one image by image (paired bootstrap over the
external set's pneumonia images). The randomisation check re-initialises the top blocks and the
logits of the float Keras network and reports the rank correlation of its maps with the trained
network's: a map that survives that is not explaining the model.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pneumoscan.dataset import external_folder, list_labelled_images, training_folder
from pneumoscan.gradcam import gradcam, signed_evidence
from pneumoscan.inference import Predictor, calibrated_probability, run_model
from pneumoscan.preprocess import to_model_input
from pneumoscan.training.served_files import load_pixels

STEPS = 10
SIDE = 224
BOOTSTRAP_ROUNDS = 1000
RANDOMISED_BLOCKS = ("block13", "block14")
RANDOMISATION_IMAGES = 50


def healthy_chest(folder: Path) -> np.ndarray:
    """The mean NORMAL X-ray of a labelled folder, as the model's canonical 224x224 grey pixels."""
    normal = [i for i in list_labelled_images(folder) if i.label == 0]
    return np.round(load_pixels(normal).astype(np.float64).mean(axis=0)).astype(np.uint8)


def centre_blob(grid: tuple[int, int]) -> np.ndarray:
    """A fixed Gaussian at the centre, the same for every image: the map that ignores the image."""
    rows, cols = np.mgrid[0 : grid[0], 0 : grid[1]]
    centre = (np.array(grid) - 1) / 2
    return np.exp(
        -(((rows - centre[0]) / (grid[0] / 4)) ** 2 + ((cols - centre[1]) / (grid[1] / 4)) ** 2) / 2
    )


def pixel_order(cam: np.ndarray) -> np.ndarray:
    """Flat pixel indices of the 224x224 image, most salient first, the map upsampled as the overlay
    draws it (ties, as in a constant map, keep image order)."""
    heat = cv2.resize(cam.astype(np.float32), (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)
    return np.argsort(-heat.reshape(-1), kind="stable")


def probabilities(predictor: Predictor, grays: np.ndarray) -> np.ndarray:
    """The served probability of each 224x224 grey image (gate off: a half-deleted X-ray is the point)."""
    inputs = np.stack([to_model_input(g, predictor.card.preprocessing) for g in grays])
    logits = run_model(predictor.session, inputs).logit
    return np.array([calibrated_probability(float(v), predictor.card.calibration) for v in logits])


def deletion_insertion(
    predictor: Predictor, gray: np.ndarray, fill: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The deletion and insertion curves of one image for one pixel order: the served
    probability after 0, 1/10, ..., all of the pixels are replaced (STEPS + 1 points each)."""
    counts = np.linspace(0, order.size, STEPS + 1).astype(int)
    deleted, inserted = [], []
    for count in counts:
        mask = np.zeros(order.size, bool)
        mask[order[:count]] = True
        mask = mask.reshape(gray.shape)
        deleted.append(np.where(mask, fill, gray))
        inserted.append(np.where(mask, gray, fill))
    curve = probabilities(predictor, np.stack(deleted + inserted))
    return curve[: STEPS + 1], curve[STEPS + 1 :]


def area(curve: np.ndarray) -> float:
    """Area under a curve sampled at STEPS + 1 evenly spaced fractions of the pixels."""
    return float(np.trapezoid(curve, dx=1 / STEPS))


def paired_comparison(served: np.ndarray, other: np.ndarray, seed: int) -> dict:
    """Mean of other - served over images, with its bootstrap standard error and 95% interval."""
    differences = other - served
    rng = np.random.default_rng(seed)
    means = [
        differences[rng.integers(0, differences.size, differences.size)].mean()
        for _ in range(BOOTSTRAP_ROUNDS)
    ]
    return {
        "mean_difference": float(differences.mean()),
        "standard_error": float(np.std(means)),
        "interval_95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
    }


def served_maps(predictor: Predictor, grays: np.ndarray) -> np.ndarray:
    """The served Grad-CAM of each image at its native grid."""
    maps = []
    for gray in grays:
        outputs = run_model(predictor.session, to_model_input(gray, predictor.card.preprocessing)[None])
        maps.append(gradcam(outputs.activation[0], predictor.dense_kernel))
    return np.stack(maps)


def faithfulness_report(predictor: Predictor, grays: np.ndarray, fill: np.ndarray, seed: int = 0) -> dict:
    """Deletion and insertion for the served map and the maps that know nothing, on `grays`."""
    maps = served_maps(predictor, grays)
    grid = maps.shape[1:]
    rng = np.random.default_rng(seed)
    makers: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "served": lambda cam: cam,
        "random": lambda cam: rng.random(grid),
        "inverted": lambda cam: 1.0 - cam,
        "centre blob": lambda cam: centre_blob(grid),
    }
    areas = {name: np.zeros((len(grays), 2)) for name in makers}
    for index, (gray, cam) in enumerate(zip(grays, maps, strict=True)):
        for name, make in makers.items():
            deletion, insertion = deletion_insertion(predictor, gray, fill, pixel_order(make(cam)))
            areas[name][index] = area(deletion), area(insertion)
    report: dict = {"images": len(grays), "grid": list(grid), "steps": STEPS, "maps": {}}
    for name, values in areas.items():
        report["maps"][name] = {
            "deletion": float(values[:, 0].mean()),
            "insertion": float(values[:, 1].mean()),
        }
        if name != "served":
            report["maps"][name]["against_served"] = {
                "deletion": paired_comparison(areas["served"][:, 0], values[:, 0], seed),
                "insertion": paired_comparison(areas["served"][:, 1], values[:, 1], seed),
            }
    return report


def beats(comparison: dict, lower_is_better: bool, standard_errors: float = 2.0) -> bool:
    """Whether the served map beats the other by at least `standard_errors` paired standard errors."""
    margin = comparison["mean_difference"] * (1 if lower_is_better else -1)
    return margin >= standard_errors * comparison["standard_error"]


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's correlation of two maps; 0 where either is constant (a map with no order shares
    none with the other)."""
    from scipy.stats import spearmanr

    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0
    return float(spearmanr(first.reshape(-1), second.reshape(-1)).statistic)


def randomisation_check(model, inputs: np.ndarray, seed: int = 0) -> dict:
    """Spearman rank correlation between the float Keras network's maps and those of a copy whose
    top blocks and logits are re-initialised (Adebayo et al.'s cascading test, top first). Near 0:
    the map depends on what the network learned. The maps are compared before Grad-CAM's ReLU: a
    randomised network's map is often negative everywhere, and a map that is all zero after the
    ReLU would give a correlation of 0 whatever it explained (its share is reported)."""
    import keras

    from pneumoscan.training.xception import LAST_CONV_LAYER, LOGIT_LAYER, PNEUMONIA

    def maps_of(network) -> np.ndarray:
        activations = keras.Model(network.input, network.get_layer(LAST_CONV_LAYER).output).predict(
            inputs, verbose=0
        )
        kernel = network.get_layer(LOGIT_LAYER).get_weights()[0][:, PNEUMONIA]
        return np.stack([signed_evidence(a, kernel) for a in activations])

    trained = maps_of(model)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    for layer in copy.layers:
        if layer.name.startswith(RANDOMISED_BLOCKS) or layer.name == LOGIT_LAYER:
            if "_bn" in layer.name:
                continue
            layer.set_weights(
                [rng.normal(0, w.std() or 0.05, w.shape).astype(w.dtype) for w in layer.get_weights()]
            )
    randomised = maps_of(copy)
    correlations = np.array([rank_correlation(a, b) for a, b in zip(trained, randomised, strict=True)])
    return {
        "images": len(inputs),
        "re_initialised": f"{', '.join(RANDOMISED_BLOCKS)} and the logits "
        "(weights drawn with each tensor's own spread)",
        "compared": "the maps before Grad-CAM's ReLU",
        "spearman_mean": float(correlations.mean()),
        "spearman_abs_mean": float(np.abs(correlations).mean()),
        "randomised_maps_zero_after_relu": float(np.mean(randomised.max(axis=(1, 2)) <= 0)),
    }


def pneumonia_grays(folder: Path) -> np.ndarray:
    return load_pixels([i for i in list_labelled_images(folder) if i.label == 1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="published model (default model_weights/)"
    )
    parser.add_argument("--on", type=Path, default=external_folder(), help="NORMAL/ PNEUMONIA/ folder scored")
    parser.add_argument(
        "--fill-from", type=Path, default=training_folder(), help="folder whose mean NORMAL fills"
    )
    parser.add_argument("--checkpoint", type=Path, help="the float Keras model, for the randomisation check")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    predictor = Predictor.load(args.model_dir)
    grays = pneumonia_grays(args.on)
    report = faithfulness_report(predictor, grays, healthy_chest(args.fill_from))
    if args.checkpoint:
        import keras

        model = keras.models.load_model(args.checkpoint, compile=False)
        inputs = np.stack(
            [to_model_input(g, predictor.card.preprocessing) for g in grays[:RANDOMISATION_IMAGES]]
        )
        report["randomisation"] = randomisation_check(model, inputs)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
