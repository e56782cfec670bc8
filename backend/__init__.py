"""tagloop: a Label Studio ML backend with SetFit pre-annotations and active learning (``backend.app.create_app``)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
