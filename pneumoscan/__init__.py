"""PneumoScan: a second-opinion aid that flags chest X-rays that look like pneumonia."""
