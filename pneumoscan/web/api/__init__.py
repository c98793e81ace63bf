"""The JSON API for programs: routes and how a result is written as JSON."""
