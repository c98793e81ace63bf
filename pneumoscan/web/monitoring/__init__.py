"""Monitoring: the dashboard, its figures and charts, the site-threshold page and the health check."""
