"""The server layer: error pages, security headers, body deadline, rate limits. Imports no feature."""
