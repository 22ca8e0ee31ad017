"""The HTTP service (``text-recognizer serve``): a web page, a JSON API and Prometheus metrics."""
