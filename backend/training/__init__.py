"""Training: turning stored labels into a new model version, off the request path."""
