"""Results: the clinician's flow. Upload, result pages, files, history, CSV export, reviews,
site threshold, retention and the commands that move results."""
