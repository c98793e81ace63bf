"""Train the served model: `python train.py --help`."""

from pneumoscan.training.pipeline import main

if __name__ == "__main__":
    main()
