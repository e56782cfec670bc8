"""The review projects in Label Studio: one per queue of a source project, created and fed through the SDK.

Each review project shows the text, the model's flag with its score and threshold, the version that made it and
why the item is in the queue, and asks the moderator for the correct label(s) of the source control (a
``<Choices>`` with the source control's name and labels). A project webhook sends the moderator's annotation
to tagloop's ``/webhook``, where it becomes a training label with provenance ``moderator``
(``verdicts.apply_verdict``); the review job also reads verdicts back from the API, in case Label Studio
dropped a webhook. Tasks are imported in queue order (Label Studio's default sequential sampling serves them by
task id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from backend.labelstudio.label_config import ControlSpec
from backend.review.queues import FALSE_NEGATIVE, FALSE_POSITIVE, LABEL_ERROR, LOW_CONFIDENCE
from backend.store.records import ReviewItemRecord, ReviewProjectRecord
from backend.store.review import ReviewRepository

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

log = logging.getLogger(__name__)
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
QUEUE_TITLES = {
    FALSE_POSITIVE: "false positives: the model flagged it, a human said it is fine",
    FALSE_NEGATIVE: "false negatives: the model let it through, a human flagged it",
    LOW_CONFIDENCE: "low confidence: the model's score is close to its flag threshold",
    LABEL_ERROR: "label-error suspects: the cross-validated model contradicts the given label",
}


def review_title(project_id: int, queue: str) -> str:
    """Title of a review project in Label Studio."""
    return f"tagloop review {queue.replace('_', ' ')} (project {project_id})"


def review_config(control: ControlSpec, queue: str) -> str:
    """Labeling config of a queue's review project: context fields, then the verdict on the source control."""
    choice = "multiple" if control.multi_label else "single"
    required = "" if control.multi_label else ' required="true"'
    empty = " (none selected: no label applies)" if control.multi_label else ""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in control.labels)
    return f"""<View>
  <Header value={quoteattr("Review queue: " + QUEUE_TITLES.get(queue, queue))}/>
  <Text name="text" value="$text"/>
  <Header value="Model label" size="6"/>
  <Text name="model_label" value="$model_label"/>
  <Header value="Score" size="6"/>
  <Text name="score" value="$score"/>
  <Header value="Model version" size="6"/>
  <Text name="model_version" value="$model_version"/>
  <Header value="Why it is here" size="6"/>
  <Text name="reason" value="$reason"/>
  <Header value={quoteattr("Verdict: the correct label(s) for the text" + empty)}/>
  <Choices name={quoteattr(control.name)} toName="text" choice="{choice}" showInline="true"{required}>
{choices}
  </Choices>
</View>"""


def task_data(item: ReviewItemRecord) -> dict[str, Any]:
    """The data of an item's review task (every ``$field`` the review config shows)."""
    return {
        "text": item.text,
        "model_label": ", ".join(item.predicted) or "(no harmful label)",
        "score": f"{item.score:.3f}" if item.score is not None else "(not scored yet)",
        "model_version": item.model_version or "(external system)",
        "reason": item.reason + (f" (reported by {item.reporter})" if item.reporter else ""),
        "tagloop_item": item.id,
        "queue": item.queue,
    }


class ReviewProjects:
    """Creates and feeds one source project's review projects through a ``LabelStudio`` SDK client."""

    def __init__(
        self, sdk: LabelStudio, reviews: ReviewRepository, *, webhook_headers: dict[str, str] | None = None
    ) -> None:
        self.sdk = sdk
        self.reviews = reviews
        self.webhook_headers = webhook_headers or {}
        """Sent with every verdict webhook (Basic credentials when tagloop's /webhook requires them)."""

    def ensure(self, project_id: int, control: ControlSpec, queue: str) -> ReviewProjectRecord:
        """The queue's review project, created if it does not exist in Label Studio; its verdict webhook is
        created too (again on a later call if that failed, since the project is recorded first)."""
        known = self.reviews.review_project(project_id, queue)
        if known is not None and not self._exists(known.ls_project_id):
            log.info("review project %s of project %s is gone from Label Studio", known.ls_project_id, project_id)
            self.reviews.forget_review_project(known.ls_project_id)
            known = None
        if known is None:
            created = self.sdk.projects.create(
                title=review_title(project_id, queue),
                label_config=review_config(control, queue),
                description=f"tagloop moderation review of project {project_id}: {QUEUE_TITLES.get(queue, queue)}",
            )
            known = ReviewProjectRecord(int(created.id or 0), project_id, queue, control.name, "")
            self.reviews.add_review_project(known)
        if not known.webhook_url:
            known = self._add_webhook(known)
        return known

    def _add_webhook(self, target: ReviewProjectRecord) -> ReviewProjectRecord:
        url = self.webhook_url(target.project_id)
        if not url:
            log.warning(
                "project %s has no ML backend in LS: verdicts are read back by the review job", target.project_id
            )
            return target
        extra = {"headers": self.webhook_headers} if self.webhook_headers else {}  # LS refuses headers=null
        self.sdk.webhooks.create(
            project=target.ls_project_id,
            url=url,
            send_payload=True,
            send_for_all_actions=False,
            actions=list(WEBHOOK_ACTIONS),
            **extra,
        )
        self.reviews.set_webhook_url(target.ls_project_id, url)
        return ReviewProjectRecord(target.ls_project_id, target.project_id, target.queue, target.control, url)

    def webhook_url(self, project_id: int) -> str:
        """tagloop's ``/webhook`` as Label Studio reaches it: the URL of the source project's ML backend."""
        backends = self.sdk.ml.list(project=project_id)
        url = next((str(b.url) for b in backends if getattr(b, "url", None)), "")
        return url.rstrip("/") + "/webhook" if url else ""

    def push(self, target: ReviewProjectRecord, items: Sequence[ReviewItemRecord]) -> int:
        """Import ``items`` (in queue order) as tasks of the review project; returns how many."""
        if not items:
            return 0
        done = self.sdk.projects.import_tasks(
            id=target.ls_project_id,
            request=[task_data(i) for i in items],  # type: ignore[misc]
            return_task_ids=True,
        )
        task_ids = list(getattr(done, "task_ids", None) or [])  # an extra field of the SDK's response model
        if len(task_ids) != len(items):
            raise RuntimeError(f"Label Studio created {len(task_ids)} tasks for {len(items)} review items")
        for item, task_id in zip(items, task_ids, strict=True):
            self.reviews.set_ls_task(item.id, target.ls_project_id, int(task_id))
        return len(items)

    def remove(self, items: Sequence[ReviewItemRecord]) -> int:
        """Delete the review tasks of items that left their queue without a verdict."""
        from label_studio_sdk.core.api_error import ApiError

        for item in items:
            if item.ls_task_id is not None:
                try:
                    self.sdk.tasks.delete(id=str(item.ls_task_id))
                except ApiError as exc:
                    if exc.status_code != 404:  # already deleted in Label Studio: nothing left to do
                        raise
                self.reviews.set_ls_task(item.id, None, None)
        return len(items)

    def annotated_tasks(self, target: ReviewProjectRecord) -> Iterator[dict[str, Any]]:
        """Tasks of the review project that carry an annotation (with their annotations)."""
        task: Any
        for task in self.sdk.tasks.list(project=target.ls_project_id, fields="all", page_size=500):
            row = task.model_dump() if hasattr(task, "model_dump") else dict(task)
            if row.get("annotations"):
                yield row

    def _exists(self, ls_project_id: int) -> bool:
        from label_studio_sdk.core.api_error import ApiError

        try:
            self.sdk.projects.get(id=ls_project_id)
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True
