"""tagloop: a Label Studio ML backend with SetFit pre-annotations and active learning."""

__version__ = "0.1.0"
__all__ = ["__version__", "create_app"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Lazy re-export of ``backend.app.create_app`` (keeps ``import backend`` light)."""
    from backend.app import create_app as factory

    return factory(*args, **kwargs)
