"""Training and export: the only part of PneumoScan that imports TensorFlow."""
