"""Calls tagloop makes to Label Studio's API (through label-studio-sdk)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def set_project_model_version(url: str, token: str, project_id: int, version: str) -> bool:
    """PATCH the LS project's ``model_version`` so LS asks for (and ranks by) the new version's predictions.

    Returns False, logging why, when Label Studio cannot be reached; training is never failed for this.
    """
    from label_studio_sdk import LabelStudio

    try:
        LabelStudio(base_url=url, api_key=token, timeout=10).projects.update(id=project_id, model_version=version)
    except Exception as exc:  # network or API error: logged, the next promotion tries again
        log.warning("could not set model_version of LS project %s at %s: %s", project_id, url, exc)
        return False
    return True
