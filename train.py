"""Train and publish the served model: `python train.py --help`.

With its defaults this rebuilds the committed model: training (pneumoscan.training.pipeline),
then export, calibration, threshold, gate and model card (pneumoscan.training.publish).
"""

import argparse

from pneumoscan.training.config import add_train_options, config_from
from pneumoscan.training.pipeline import train
from pneumoscan.training.publish import publish


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fine-tune Xception on the chest X-ray training folder and publish it."
    )
    add_train_options(parser)
    config = config_from(parser.parse_args(argv))
    publish(train(config), config)


if __name__ == "__main__":
    main()
