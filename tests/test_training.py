"""`python train.py` end to end on a few dozen real X-rays: split, cache, fine-tune, export,
calibration, threshold, gate, model card. Small and short, but the same code path as the full run."""

import argparse
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from pneumoscan.training.augment import augment, burned_in_text
from pneumoscan.training.config import TrainConfig, add_train_options, config_from, config_from_dict
from pneumoscan.training.corruptions import (
    FAMILIES,
    FAMILY_SETS,
    MEDMNIST_C,
    brightness,
    contrast,
    downscale,
    family_set,
    impulse_noise,
    jpeg,
    shot_noise,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_folder(target: Path, source: Path, per_class: int) -> Path:
    """`per_class` images a class as symbolic links (nothing copied); the pneumonia half bacterial,
    half viral, for the subtype head."""
    for name in ("NORMAL", "PNEUMONIA"):
        (target / name).mkdir(parents=True)
        paths = sorted((source / name).glob("*.jpeg"))
        if name == "PNEUMONIA":
            half = per_class // 2
            paths = [p for p in paths if "_virus" in p.name][:half] + [
                p for p in paths if "_virus" not in p.name
            ]
        for path in paths[:per_class]:
            (target / name / path.name).symlink_to(path)
    return target


def test_train_py_runs_end_to_end_and_publishes_a_servable_model(xray_dir, tmp_path):
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (make test installs it)")
    from pneumoscan.training.xception import packaged_imagenet_model

    try:
        base = str(packaged_imagenet_model())
    except FileNotFoundError:
        base = "none"
    data = tiny_folder(tmp_path / "train", xray_dir, 24)
    external = (
        tiny_folder(tmp_path / "external", xray_dir.parent / "external_dev", 12)
        if (xray_dir.parent / "external_dev").is_dir()
        else tiny_folder(tmp_path / "external", xray_dir, 12)
    )
    out, build = tmp_path / "model", tmp_path / "build"
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--data",
            str(data),
            "--external-dev",
            str(external),
            "--out",
            str(out),
            "--build-dir",
            str(build),
            "--base-weights",
            base,
            "--views",
            "2",
            "--epochs",
            "1",
            "--head-epochs",
            "2",
            "--val-fraction",
            "0.3",
            "--cache-layer",
            "add_10",
            "--input-size",
            "96",
            "--bootstrap-rounds",
            "20",
            "--soup",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert 0 < card["threshold"] < 1
    assert card["preprocessing_parameters"] == {"input_size": 96, "clahe_clip": 0.0}
    assert card["calibration"]["scale"] != 1.0 and card["calibration_choice"]["fitted_on"] == "external"
    assert card["threshold_choice"]["bootstrap_rounds"] <= 20 and "external" in card["threshold_policy"]
    assert "blocks 13-14" in card["architecture"] and "96 px" in card["architecture"]
    assert card["training"]["soup"] == 2 and "2 times from one linear probe" in card["architecture"]
    assert card["split"]["val"]["images"] > 0 and card["split"]["train"]["images"] > 0
    assert card["external"]["n"] == 24
    assert card["weight_variants"]["shipped"] in ("int8", "float16", "float32")
    assert card["gradcam_vs_float32_gradienttape"]["max_abs_diff"] < 0.6
    explanation = card["explanation"]
    assert explanation["grid"] == [6, 6] and set(explanation["maps"]) == {
        "served",
        "random",
        "inverted",
        "centre blob",
    }
    randomisation = explanation["randomisation"]
    assert (
        -1 <= randomisation["spearman_mean"] <= 1
        and 0 <= randomisation["randomised_maps_zero_after_relu"] <= 1
    )
    for picture in ("roc.png", "confusion_matrix.png", "calibration.png", "training_curves.png"):
        assert (build / "report" / picture).stat().st_size > 1000

    from pneumoscan.decode import decode_image
    from pneumoscan.inference import Predictor

    xray = next(data.glob("PNEUMONIA/*.jpeg"))
    estimate = Predictor.load(out, threads=1).predict(decode_image(xray.read_bytes()), check_xray=False)
    scale, bias = card["calibration"]["scale"], card["calibration"]["bias"]
    assert estimate.probability == pytest.approx(1 / (1 + np.exp(-(scale * estimate.logit + bias))))
    assert estimate.model_version == card["model_version"]


def test_every_option_round_trips_through_the_parser_and_the_saved_config():
    parser = argparse.ArgumentParser()
    add_train_options(parser)
    config = config_from(
        parser.parse_args(["--input-size", "160", "--clahe-clip", "1.5", "--cache-layer", "add_6"])
    )
    assert (config.input_size, config.clahe_clip, config.cache_layer) == (160, 1.5, "add_6")
    assert config.preprocessing.input_size == 160 and config.preprocessing.clahe_clip == 1.5
    assert config_from_dict(json.loads(json.dumps(config.as_dict()))) == config
    assert config_from(parser.parse_args([])) == TrainConfig()
    assert {f.name for f in fields(TrainConfig)} <= set(vars(parser.parse_args([])))


def test_augmentation_keeps_shape_and_is_reproducible():
    gray = np.random.default_rng(0).integers(0, 256, (224, 224), dtype=np.uint8)
    first = augment(gray, np.random.default_rng(5), corruption=0.5)
    assert first.shape == gray.shape and first.dtype == np.uint8
    assert np.array_equal(first, augment(gray, np.random.default_rng(5), corruption=0.5))
    assert not np.array_equal(first, augment(gray, np.random.default_rng(6), corruption=0.5))


def test_wider_photometric_ranges_spread_the_exposure_of_the_views():
    """Same draws, wider ranges: the exposure (the centre's brightness) spreads further, and a
    width of 1 gives the views it always gave."""
    gray = np.full((224, 224), 128, np.uint8)

    def spread(photometric: float) -> float:
        rng = np.random.default_rng(1)
        return float(np.std([augment(gray, rng, photometric=photometric)[112, 112] for _ in range(200)]))

    default = augment(gray, np.random.default_rng(2))
    assert np.array_equal(default, augment(gray, np.random.default_rng(2), photometric=1.0))
    assert spread(0.0) == 0.0
    assert spread(2.0) > 1.8 * spread(1.0) > 0


def test_burned_in_text_marks_only_the_edges_of_an_otherwise_unchanged_view():
    gray = np.full((224, 224), 90, np.uint8)
    for seed in range(20):
        marked = burned_in_text(gray, np.random.default_rng(seed))
        changed = marked != gray
        assert changed.any() and (marked[changed] > gray[changed]).all(), "white marks"
        assert not changed[80:200, 40:184].any(), "nothing over the lungs"
    plain = augment(gray, np.random.default_rng(3), corruption=0.5)
    marked = augment(gray, np.random.default_rng(3), corruption=0.5, text=1.0)
    assert (marked != plain).any() and np.array_equal(marked[80:200, 40:184], plain[80:200, 40:184])


@pytest.mark.parametrize("name", sorted(FAMILY_SETS["medmnist-c"]))
def test_each_corruption_keeps_the_shape_and_changes_the_pixels(name):
    rows, cols = np.mgrid[0:224, 0:224]
    gray = (((rows // 7 + cols // 7) % 2) * 150 + 50).astype(np.uint8)
    damaged = FAMILY_SETS["medmnist-c"][name](gray, np.random.default_rng(1))
    assert damaged.shape == gray.shape and damaged.dtype == np.uint8
    assert np.abs(damaged.astype(int) - gray).mean() > 0.5


def test_wider_geometric_ranges_move_the_chest_further():
    """Same draws, wider ranges: a bright square off the centre lands further from where it was,
    no geometric change leaves it in place, and a width of 1 gives the views it always gave."""
    gray = np.zeros((224, 224), np.uint8)
    gray[40:60, 150:170] = 255

    def mean_move(geometric: float) -> float:
        rng = np.random.default_rng(1)
        moves = []
        for _ in range(100):
            rows, cols = np.nonzero(augment(gray, rng, photometric=0.0, geometric=geometric) > 128)
            moves.append(np.hypot(rows.mean() - 49.5, cols.mean() - 159.5))
        return float(np.mean(moves))

    default = augment(gray, np.random.default_rng(2))
    assert np.array_equal(default, augment(gray, np.random.default_rng(2), geometric=1.0))
    assert mean_move(0.0) < 0.5
    assert mean_move(2.0) > 1.8 * mean_move(1.0) > 2


def test_medmnist_c_families_damage_as_named():
    """Shot noise keeps the mean exposure, impulse noise sticks a few pixels at black or white,
    low contrast narrows the spread around the same mean, brightness moves the mean."""
    gray = np.random.default_rng(2).integers(60, 200, (224, 224), dtype=np.uint8)
    rng = np.random.default_rng(4)
    assert abs(shot_noise(gray, rng).mean() - gray.mean()) < 1.0
    salted = impulse_noise(gray, rng)
    stuck = salted != gray
    assert 0.003 < stuck.mean() < 0.03 and set(np.unique(salted[stuck])) <= {0, 255}
    flat = contrast(gray, rng)
    assert flat.std() < 0.85 * gray.std() and abs(flat.mean() - gray.mean()) < 1.0
    assert abs(brightness(gray, rng).mean() - gray.mean()) >= 14


def test_the_corruption_family_set_is_chosen_by_name():
    """medmnist-c adds its six families to the telemedicine eight; an augmented view with certain
    corruption draws from the set given; an unknown name is refused before any training."""
    assert family_set("telemedicine") == tuple(FAMILIES.values())
    assert len(family_set("medmnist-c")) == len(FAMILIES) + len(MEDMNIST_C)
    with pytest.raises(ValueError, match="medmnist-c"):
        family_set("imagenet-c")
    gray = np.full((224, 224), 128, np.uint8)
    for seed in range(4):
        centre = augment(gray, np.random.default_rng(seed), 1.0, families=(impulse_noise,))[60:164, 60:164]
        assert {0, 255} <= set(np.unique(centre)), "stuck pixels, which exposure changes never make"
        plain = augment(gray, np.random.default_rng(seed), 0.0, families=(impulse_noise,))[60:164, 60:164]
        assert not {0, 255} & set(np.unique(plain))


def test_fixed_corruptions_of_the_robustness_bar():
    gray = np.random.default_rng(3).integers(0, 256, (224, 224), dtype=np.uint8)
    assert np.abs(jpeg(gray, 40).astype(int) - gray).mean() > np.abs(jpeg(gray, 90).astype(int) - gray).mean()
    small = downscale(gray, 112)
    assert small.shape == gray.shape
    assert (
        np.abs(np.diff(small.astype(int), axis=1)).mean()
        < 0.6 * np.abs(np.diff(gray.astype(int), axis=1)).mean()
    )


def test_a_soup_is_the_mean_of_its_members_fine_tuned_from_one_start():
    from dataclasses import replace

    from pneumoscan.training.pipeline import fine_tune, soup

    keras, model, data = tiny_fine_tuning_problem()
    config = replace(TrainConfig(), epochs=2, average_from=1, batch_size=8, soup=2)
    start = model.get_weights()

    keras.utils.set_random_seed(config.seed)  # as training seeds before its first run
    history = soup(model, model, start, data, config, started=0.0)
    souped = model.get_weights()
    members = []
    for seed in (config.seed, config.seed + 1):
        model.set_weights(start)
        keras.utils.set_random_seed(seed)
        fine_tune(model, *data, replace(config, seed=seed))
        members.append(model.get_weights())

    assert len(history["loss"]) == 2
    assert not np.allclose(members[0][-1], members[1][-1])
    for mixed, first, second in zip(souped, *members, strict=True):
        np.testing.assert_allclose(mixed, (first + second) / 2, rtol=1e-5, atol=1e-6)


def tiny_fine_tuning_problem():
    """A model, cache and targets shaped as fine-tuning's, small enough to train in a second."""
    keras = pytest.importorskip("keras", reason="training needs TensorFlow (make test installs it)")
    inputs = keras.Input((4, 4, 8))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, padding="same")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(pooled))
    rng = np.random.default_rng(0)
    cache = rng.normal(size=(2, 24, 4, 4, 8)).astype(np.float16)
    y = np.stack([np.arange(24) % 2, np.where(np.arange(24) % 2, np.arange(24) % 4 // 2, -1)], 1)
    return keras, model, (cache, y.astype(np.float32), cache[:1, :8], y[:8].astype(np.float32))


def test_dense_averaging_takes_the_weights_every_n_batches():
    from dataclasses import replace

    from pneumoscan.training.pipeline import fine_tune

    keras, model, data = tiny_fine_tuning_problem()
    start = model.get_weights()
    config = replace(TrainConfig(), epochs=3, average_from=2, batch_size=8)  # 3 batches per epoch

    def tuned(average_every: int) -> list[np.ndarray]:
        model.set_weights(start)
        keras.utils.set_random_seed(config.seed)
        fine_tune(model, *data, replace(config, average_every=average_every))
        return model.get_weights()

    per_epoch, every_batch = tuned(0), tuned(1)
    for longer_than_needed in (3, 10):  # every epoch's last batch: the same as per epoch
        for a, b in zip(per_epoch, tuned(longer_than_needed), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(per_epoch[-1], every_batch[-1])


def test_ranking_loss_is_the_mean_softplus_over_normal_pneumonia_pairs():
    keras = pytest.importorskip("keras", reason="training needs TensorFlow (make test installs it)")
    from pneumoscan.training.pipeline import pairwise_ranking_loss, two_task_loss

    y = np.array([[1, 0], [0, -1], [1, 1], [0, -1]], np.float32)
    logits = np.array([[2.0, 0.0], [1.0, 0.3], [0.5, -0.2], [-1.0, 0.1]], np.float32)
    pairs = [(p, n) for p in (2.0, 0.5) for n in (1.0, -1.0)]
    expected = np.mean([np.log1p(np.exp(n - p)) for p, n in pairs])
    ranking = float(keras.ops.convert_to_numpy(pairwise_ranking_loss(y[:, 0], logits[:, 0])))
    assert ranking == pytest.approx(expected, rel=1e-5)
    assert float(keras.ops.convert_to_numpy(pairwise_ranking_loss(np.ones(4, np.float32), logits[:, 0]))) == 0
    plain = keras.ops.convert_to_numpy(two_task_loss(y, 0.0)(y, logits))
    ranked = keras.ops.convert_to_numpy(two_task_loss(y, 0.0, ranking_weight=2.0)(y, logits))
    np.testing.assert_allclose(ranked - plain, 2.0 * expected, rtol=1e-5)


def test_mixup_loss_is_the_share_weighted_loss_of_both_targets():
    keras = pytest.importorskip("keras", reason="training needs TensorFlow (make test installs it)")
    from pneumoscan.training.pipeline import two_task_loss

    y = np.array([[0, -1], [1, 0], [1, 1], [0, -1]], np.float32)
    loss = two_task_loss(y, label_smoothing=0.0)
    logits = np.array([[0.3, -1.0], [2.0, 0.5], [-0.4, 1.2], [1.1, 0.0]], np.float32)
    partner = y[[2, 3, 0, 1]]
    share = np.array([1.0, 0.0, 0.3, 0.8], np.float32)
    mixed = keras.ops.convert_to_numpy(loss(np.column_stack([y, partner, share]), logits))
    own = keras.ops.convert_to_numpy(loss(y, logits))
    other = keras.ops.convert_to_numpy(loss(partner, logits))
    np.testing.assert_allclose(mixed, share * own + (1 - share) * other, rtol=1e-6)
    assert not np.allclose(own, other)


def test_compare_reads_experiments_and_refuses_other_external_images(tmp_path, monkeypatch, capsys):
    from pneumoscan.training import compare

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 80)
    for name, noise in (("first", 1.0), ("second", 0.5)):
        (tmp_path / name).mkdir()
        logits = labels * 2.0 + rng.normal(0, noise, labels.size)
        np.savez(tmp_path / name / "logits.npz", external_labels=labels, external_logits=logits)
    (tmp_path / "elsewhere").mkdir()
    np.savez(tmp_path / "elsewhere" / "logits.npz", external_labels=1 - labels, external_logits=labels * 1.0)
    monkeypatch.setattr(compare, "EXPERIMENTS", tmp_path)

    compare.main(["first", "second", "--rounds", "200"])
    report = json.loads(capsys.readouterr().out)

    assert report["second"]["auc"] > report["first"]["auc"]
    assert report["second"]["minus_first"]["difference"] == pytest.approx(
        report["second"]["auc"] - report["first"]["auc"]
    )
    with pytest.raises(SystemExit, match="other external images"):
        compare.compare(["first", "elsewhere"])


def test_sharpness_aware_step_applies_the_gradient_taken_at_the_worst_nearby_weights():
    from pneumoscan.training.sharpness import SharpnessAware

    keras, model, (cache, y, _, _) = tiny_fine_tuning_problem()
    import tensorflow as tf

    x, rho, rate = cache[0].astype(np.float32), 0.5, 0.1
    loss = keras.losses.MeanSquaredError()

    def gradients(weights: list[np.ndarray]) -> list[np.ndarray]:
        model.set_weights(weights)
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        return [g.numpy() for g in tape.gradient(value, model.trainable_weights)]

    start = model.get_weights()
    first = gradients(start)
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in first))
    sharp = gradients([w + rho * g / norm for w, g in zip(start, first, strict=True)])
    expected = [w - rate * g for w, g in zip(start, sharp, strict=True)]
    plain = [w - rate * g for w, g in zip(start, first, strict=True)]

    model.set_weights(start)
    learner = SharpnessAware(model, rho)
    learner.compile(keras.optimizers.SGD(rate), loss)
    learner.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(model.get_weights()[0], plain[0], atol=1e-6)


def test_batch_norm_learns_and_follows_the_data_only_when_trained():
    from dataclasses import replace

    from pneumoscan.training.pipeline import fine_tune

    keras, _, data = tiny_fine_tuning_problem()
    inputs = keras.Input((4, 4, 8))
    normed = keras.layers.BatchNormalization()(keras.layers.Conv2D(6, 3, padding="same")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(normed)))
    start = model.get_weights()  # conv 2, batch norm 4 (scale, offset, mean, variance), dense 2
    config = replace(TrainConfig(), epochs=1, average_from=1, batch_size=8)

    def batch_norm_after(mode: str) -> list[np.ndarray]:
        model.set_weights(start)
        fine_tune(model, *data, replace(config, batch_norm=mode))
        return model.get_weights()[2:6]

    for kept, before in zip(batch_norm_after("frozen"), start[2:6], strict=True):
        np.testing.assert_array_equal(kept, before)
    for moved, before in zip(batch_norm_after("trained"), start[2:6], strict=True):
        assert not np.allclose(moved, before)
    with pytest.raises(ValueError, match="frozen or trained"):
        fine_tune(model, *data, replace(config, batch_norm="learned"))
