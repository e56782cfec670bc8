"""The harness starts a real Label Studio that the SDK can drive with the legacy token."""

from __future__ import annotations

from label_studio_sdk import LabelStudio

from tools.harness import LabelStudioServer

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="label" toName="text"><Choice value="A"/><Choice value="B"/></Choices></View>'
)


def test_project_import_list_delete(label_studio: LabelStudioServer, ls_client: LabelStudio) -> None:
    assert label_studio.pid > 0
    project = ls_client.projects.create(title="harness smoke", label_config=CONFIG)
    assert project.id is not None
    try:
        imported = ls_client.projects.import_tasks(
            id=project.id, request=[{"text": "first"}, {"text": "second"}, {"text": "third"}], return_task_ids=True
        )
        assert imported.task_count == 3
        tasks = list(ls_client.tasks.list(project=project.id))
        assert len(tasks) == 3
        assert sorted(t.data["text"] for t in tasks) == ["first", "second", "third"]
    finally:
        ls_client.projects.delete(id=project.id)
    assert project.id not in [p.id for p in ls_client.projects.list()]
