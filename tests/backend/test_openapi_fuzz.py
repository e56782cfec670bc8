"""/openapi.json (generated from the routes and the pydantic models) describes every route, and schemathesis fuzzes
every operation: no 5xx, no traceback in a body.

The fuzz run sends ≥ 2,000 generated requests (valid and invalid per the schema) in-process through the WSGI app,
with the real bundled model behind /predict, credentials on (Basic + Bearer configured, Bearer sent), and a project
that has tasks and labels. Training jobs are queued but not run (a no-op waker), so the run stays CPU-bounded.
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from backend.app import create_app
from backend.bootstrap import build
from backend.config import Settings
from backend.models.encoder import Encoder
from backend.services import Services
from tests.conftest import config_xml, read_rows
from tools.webhooks import annotation_event

API_KEY = "fuzz-api-key-7f3a9c"
BASIC = ("labelstudio", "fuzz-basic-pass-51e2")
MIN_CASES = 2_000
EXAMPLES_PER_MODE = 85
"""Hypothesis examples per operation and generation mode (positive, negative); trivial operations stop early."""
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")


def flask_operations(app: Any) -> set[tuple[str, str]]:
    """(OpenAPI path, lower-case method) of every Flask route except ``static``."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return out


def test_every_route_is_described(tmp_path: Path) -> None:
    """A route added without its ``@operation(...)`` (backend/api/openapi.py) fails here."""
    from backend.api.openapi import document, operations

    app = create_app(Settings(data_dir=tmp_path))
    undeclared = {(rule.rule, method) for rule, method, op in operations(app) if op is None}
    assert undeclared == set(), "routes without @operation(...)"
    described = {(path, method) for path, item in document(app)["paths"].items() for method in item}
    assert described == flask_operations(app)
    app.extensions["tagloop"].close()


def test_served_document_is_valid_openapi(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    client = app.test_client()
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.json["openapi"].startswith("3.0")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.validate()  # raises on an invalid OpenAPI document
    fuzzed = {(r.ok().path, r.ok().method) for r in schema.get_all_operations()}
    described = {(path, method) for path, item in served.json["paths"].items() for method in item}
    assert fuzzed == described - {("/openapi.json", "get")}  # schemathesis leaves out the document itself
    app.extensions["tagloop"].close()


@pytest.fixture(scope="module")
def fuzz_services(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        api_key=API_KEY,
        basic_auth_user=BASIC[0],
        basic_auth_password=BASIC[1],
        max_tasks_per_request=50,
        max_body_bytes=256 * 1024,
        serve_precision="torch",  # no ONNX export: this file is about HTTP robustness
    )
    services = build(settings, base_encoder=encoder, role="cli")  # jobs are queued, never run

    yield services
    services.close()


def seed_project(client: Any, headers: dict[str, str]) -> None:
    """Project 1 (news topics) with tasks and labels, so the fuzzed operations reach real code paths."""
    news = config_xml("news_topics")
    assert client.post("/setup", json={"project": "1.1700000000", "schema": news}, headers=headers).status_code == 200
    rows = read_rows("ag_news", 6)
    for i, row in enumerate(rows, start=1):
        event = annotation_event(1, i, row["text"], [row["label"]], control="topic", label_config=news)
        assert client.post("/webhook", json=event, headers=headers).status_code == 200


def test_fuzz_every_operation(fuzz_services: Services) -> None:
    app = create_app(services=fuzz_services)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    seed_project(app.test_client(), headers)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    statuses: Counter[int] = Counter()
    per_operation: dict[str, Counter[int]] = {}
    failures: list[str] = []
    started = time.perf_counter()

    def exercise(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        per_operation.setdefault(f"{case.method} {case.path}", Counter())[response.status_code] += 1
        text = response.text
        if response.status_code >= 500 or TRACEBACK.search(text):
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {text[:300]}")
        elif response.status_code >= 400 and response.headers.get("content-type", [""])[0].startswith(
            "application/json"
        ):
            body = response.json()
            if not (isinstance(body, dict) and {"error", "reason"} <= set(body)):
                failures.append(f"{case.method} {case.formatted_path}: error body {text[:200]}")

    settings = hypothesis.settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = settings(given(case=operation.as_strategy(generation_mode=mode))(exercise))
            try:
                run()
            except Unsatisfiable:  # an operation with no parameters and no body has no invalid input
                assert mode is GenerationMode.NEGATIVE and not operation.body and not list(operation.iter_parameters())
    elapsed = time.perf_counter() - started
    total = sum(statuses.values())
    print(f"\nfuzz: {total} cases in {elapsed:.1f} s; statuses {dict(sorted(statuses.items()))}")
    for name, counts in sorted(per_operation.items()):
        print(f"fuzz:   {name}: {sum(counts.values())} cases, statuses {dict(sorted(counts.items()))}")
    assert failures == [], "\n".join(failures[:20])
    assert total >= MIN_CASES, f"only {total} cases generated; expected at least {MIN_CASES}"
    assert not [s for s in statuses if s >= 500]
    # the run reached the real handlers, not only the validation layer
    assert statuses[200] > 100 and statuses[400] > 50 and statuses[422] > 20, statuses


def test_basic_header_reaches_label_studio_endpoints(fuzz_services: Services) -> None:
    """The fuzz run sends Bearer; Basic (what Label Studio sends) works on the same app."""
    client = create_app(services=fuzz_services).test_client()
    token = base64.b64encode(f"{BASIC[0]}:{BASIC[1]}".encode()).decode()
    r = client.post(
        "/setup",
        json={"project": "3.1", "schema": config_xml("news_topics")},
        headers={"Authorization": f"Basic {token}"},
    )
    assert r.status_code == 200, r.json
