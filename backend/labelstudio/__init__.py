"""Everything that knows Label Studio's formats: labeling configs, request payloads, prediction results."""
