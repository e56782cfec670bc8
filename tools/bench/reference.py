"""The reference backend for ``tagloop bench freshness``: what the Label Studio example backends do.

It retrains synchronously inside the webhook every 10 labels and serves the retrained model. To isolate
the architecture, it uses tagloop's own model family (MiniLM embeddings + logistic head) with embeddings
computed up front, so its retrain is only the head fit: a generous reference.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from flask import Flask, Response, jsonify, request

from backend.models.heads import FittedHead, fit_head

RETRAIN_EVERY = 10


def reference_app(labels: tuple[str, ...], embeddings: dict[int, np.ndarray], seed: int = 0) -> Flask:
    """Webhook + version endpoint; ``embeddings``: task id → (dim,) vector."""
    app = Flask("reference")
    lock = threading.Lock()
    state: dict[str, Any] = {"labeled": {}, "version": 0, "n_train": 0, "head": None}

    @app.post("/webhook")
    def webhook() -> Response:
        body = request.get_json()
        ann = body["annotation"]
        with lock:
            state["labeled"][int(ann["task"])] = ann["result"][0]["value"]["choices"]
            if len(state["labeled"]) % RETRAIN_EVERY == 0:
                ids = list(state["labeled"])
                head = fit_head(
                    labels, False, np.stack([embeddings[i] for i in ids]), [state["labeled"][i] for i in ids], seed=seed
                )
                if isinstance(head, FittedHead):
                    state.update(head=head, version=state["version"] + 1, n_train=len(ids))
        return jsonify({"status": "ok"})

    @app.get("/version")
    def version() -> Response:
        return jsonify({"version": state["version"], "n_train": state["n_train"]})

    return app
