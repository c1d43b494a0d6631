"""Online cluster assignment: JSON records in, cluster and per-cluster probabilities out.

The served model is loaded once (through :func:`clusterflow.load_model`, so only
published models load) and, for a dataset, its promotion pointer is watched: a newly
promoted model is loaded beside the old one and swapped in by one reference
assignment, so a request always finishes on the model it started with and none is
dropped. Requests that arrive while a batch is being assigned are assigned together
in the next one: the per-call cost of the featurizer (pandas and scikit-learn
overhead, milliseconds) is paid once per batch, not once per request.

Nothing here knows about Prefect; :func:`build_app` returns a FastAPI application.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import math
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from .errors import InputValidationError, Problem, RunNotFoundError
from .model import ROW_ID, ClusterModel, load_model
from .modalities.image import prepare_image_columns
from .promotion import Promotion, read_promoted
from .roles import RoleDecision
from .run_folder import RunFolder
from .validation import validate_table

logger = logging.getLogger(__name__)

TOKEN_ENV = "CLUSTERFLOW_SERVE_TOKEN"
MAX_BATCH_ROWS = 4096
NUMBER_ROLES = {"numeric": None, "latitude": 90.0, "longitude": 180.0}  # role -> largest absolute value
TEXT_ROLES = ("categorical", "text", "id", "datetime", "geo", "image")
MISSING_COLUMN_HINT = "the model was trained with it; send it in every record (null for a missing value)"


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and where it came from."""

    model: ClusterModel
    model_uri: str
    promotion: Promotion | None = None
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())

    @property
    def model_id(self) -> str:
        return self.model_uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def run_uri(self) -> str:
        return self.model_uri.rstrip("/").rsplit("/", 2)[0]

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        model = self.model
        return {
            "run": self.run_uri, "model": self.model_id, "algorithm": model.pipeline_[-1].algorithm,
            "clusters": [int(c) for c in model.clusters_], "id_column": model.id_column_,
            "schema": {c: r for c, r in model.roles_.items() if r != "ignore"},
            "dataset": self.promotion.dataset if self.promotion else None,
            "promoted_at": self.promotion.promoted_at if self.promotion else None, "loaded_at": self.loaded_at,
        }


class ModelSource:
    """The model to serve: a fixed model folder or run, or the promoted model of a dataset.

    For a dataset, :meth:`refresh` (called by :meth:`watch` every ``poll_seconds``) loads
    a newly promoted model and swaps it in; a model that fails to load is logged and the
    current one keeps serving.
    """

    def __init__(self, model_uri: str | None = None, *, runs_root: str | None = None, dataset: str | None = None,
                 poll_seconds: float = 2.0, storage_options: dict | None = None):
        if (model_uri is None) == (dataset is None):
            raise ValueError("give a model or a dataset, not both")
        self.runs_root, self.dataset, self.poll_seconds = runs_root, dataset, poll_seconds
        self.storage_options = storage_options
        self.last_error: str | None = None
        if model_uri is not None:
            self.current = self._load(model_uri, None)
        else:
            self.current = self._load_promotion(self._read_promotion())

    def _read_promotion(self) -> Promotion:
        promotion = read_promoted(self.runs_root, self.dataset, self.storage_options)
        if promotion is None:
            raise RunNotFoundError(f"no promoted model for dataset {self.dataset!r} under {self.runs_root}: "
                                   f"run `clusterflow promote RUN MODEL_ID` first")
        return promotion

    def _load(self, model_uri: str, promotion: Promotion | None) -> ServedModel:
        model = load_model(model_uri, self.storage_options)
        uri = model_uri.rstrip("/")
        if "/models/" not in uri:  # a run folder: name the model it resolved to
            uri = f"{uri}/models/{RunFolder(uri, self.storage_options).manifest().top_model}"
        return ServedModel(model, uri, promotion)

    def _load_promotion(self, promotion: Promotion) -> ServedModel:
        return self._load(promotion.model_uri, promotion)

    def refresh(self) -> bool:
        """Swap in the dataset's promoted model if the pointer changed; True when it did."""
        if self.dataset is None:
            return False
        promotion = self._read_promotion()
        if promotion == self.current.promotion:
            return False
        self.current = self._load_promotion(promotion)
        logger.warning("now serving %s (promoted %s)", self.current.model_uri, promotion.promoted_at)
        return True

    def watch(self, stop: threading.Event) -> None:
        """Refresh every ``poll_seconds`` until ``stop`` is set (run it in a thread)."""
        while not stop.wait(self.poll_seconds):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # a broken promotion must not stop the service: keep the current model
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.error("keeping %s: cannot load the promoted model (%s)", self.current.model_uri,
                             self.last_error)


def records_frame(records: list[dict[str, Any]], roles: dict[str, str], image_root: str | None = None) -> pd.DataFrame:
    """The records as the table the model expects, or :class:`InputValidationError` naming each bad column.

    JSON types are checked here in plain Python (cheap, per request); string values of
    number, date and point columns then go through the table rules of
    :func:`clusterflow.validation.validate_table`, and image paths must resolve under
    ``image_root`` (without one, image columns are refused).
    """
    expected = {c: r for c, r in roles.items() if r != "ignore"}
    problems = []
    for column in expected:
        absent = tuple(i for i, record in enumerate(records) if column not in record)
        if absent:
            problems.append(Problem(rule="column is missing", column=column, rows=absent, hint=MISSING_COLUMN_HINT))
    frame = pd.DataFrame.from_records(records, columns=list(expected))
    parse_with_rules = []
    for column, role in expected.items():
        values = [record.get(column) for record in records]
        wrong = tuple(i for i, value in enumerate(values) if not _has_kind(value, role))
        if wrong:
            kind = "numbers (or null)" if role in NUMBER_ROLES else "strings or numbers (or null)"
            problems.append(Problem(rule=f"values are not {kind}", column=column, rows=wrong,
                                    hint=f"the column's role is {role}: send {kind}"))
        elif role == "id":
            seen: dict[Any, int] = {}
            repeated = tuple(i for i, v in enumerate(values) if v is not None and seen.setdefault(v, i) != i)
            if repeated:
                problems.append(Problem(rule="id values repeat", column=column, rows=repeated,
                                        hint="each record of a request needs its own id"))
        elif role in ("datetime", "geo") or any(isinstance(v, str) for v in values) and role in NUMBER_ROLES:
            parse_with_rules.append(column)
        elif NUMBER_ROLES.get(role):
            outside = tuple(i for i, v in enumerate(values) if v is not None and abs(v) > NUMBER_ROLES[role])
            if outside:
                problems.append(Problem(rule=f"values outside [-{NUMBER_ROLES[role]:g}, {NUMBER_ROLES[role]:g}]",
                                        column=column, rows=outside, hint="send degrees"))
    if parse_with_rules:
        try:
            validate_table(frame[parse_with_rules], [RoleDecision(c, expected[c], "") for c in parse_with_rules],
                           min_rows=None)
        except InputValidationError as exc:
            problems += exc.problems
    images = [c for c, r in expected.items() if r == "image"]
    if images and not problems:
        if image_root is None:
            problems += [Problem(rule="image columns are not accepted by this service", column=c,
                                 hint="start the service with --image-root DIR to read image files under DIR")
                         for c in images]
        else:
            frame, image_problems = prepare_image_columns(frame, images, image_root)
            problems += image_problems
    if problems:
        raise InputValidationError(problems)
    return frame


def _has_kind(value: Any, role: str) -> bool:
    if value is None:
        return True
    if role in NUMBER_ROLES:
        return isinstance(value, str) or (isinstance(value, Real) and (isinstance(value, bool) or math.isfinite(value)))
    return isinstance(value, (str, Real))


def assign_frames(served: ServedModel, frames: list[pd.DataFrame]) -> list[list[dict[str, Any]]]:
    """Assign several requests' rows in one pass; one list of row results per frame."""
    model = served.model
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):  # checked once, at fit
        Z = model.pipeline_[:-1].transform(frame)
        labels = model.labels_of(Z).tolist()
        proba = np.round(model.pipeline_[-1].predict_proba(Z), 6).tolist()
    names = [str(int(c)) for c in model.clusters_]
    id_name = model.id_column_ or ROW_ID
    results, start = [], 0
    for part in frames:
        ids = part[model.id_column_].tolist() if model.id_column_ else list(range(len(part)))
        results.append([{id_name: ids[i], "cluster": labels[start + i], "probabilities": dict(zip(names, proba[start + i]))}
                        for i in range(len(part))])
        start += len(part)
    return results


class Batcher:
    """Assigns queued requests together, in a worker thread.

    Each request is assigned by the model its records were validated against; a batch
    holds requests of one model, so a swap never mixes models within a batch.
    """

    def __init__(self, max_rows: int = MAX_BATCH_ROWS):
        self.max_rows = max_rows
        self.queue: asyncio.Queue = asyncio.Queue()
        self._next = None  # a request that starts the next batch (it came for another model)

    async def assign(self, served: ServedModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((served, frame, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [self._next or await self.queue.get()]
            self._next = None
            served, rows = batch[0][0], len(batch[0][1])
            while rows < self.max_rows and not self.queue.empty():
                item = self.queue.get_nowait()
                if item[0] is not served:
                    self._next = item
                    break
                batch.append(item)
                rows += len(item[1])
            await self._assign(served, batch)

    @staticmethod
    async def _assign(served: ServedModel, batch: list) -> None:
        try:
            results = await asyncio.to_thread(assign_frames, served, [frame for _, frame, _ in batch])
        except Exception:  # one request's rows broke the batch: assign each alone so only that one fails
            results = []
            for _, frame, future in batch:
                try:
                    results.append((await asyncio.to_thread(assign_frames, served, [frame]))[0])
                except Exception as exc:
                    future.set_exception(exc)
                    results.append(None)
        for (_, _, future), result in zip(batch, results):
            if result is not None and not future.done():
                future.set_result(result)


def build_app(source: ModelSource, token: str | None = None, image_root: str | None = None):
    """The FastAPI application: ``POST /predict``, ``GET /model``, ``GET /health``.

    With a ``token``, ``/predict`` and ``/model`` need ``Authorization: Bearer <token>``;
    ``/health`` stays open for load balancers and probes.
    """
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher()
        app.state.batcher = batcher
        worker = asyncio.create_task(batcher.run())
        stop = threading.Event()
        watcher = threading.Thread(target=source.watch, args=(stop,), daemon=True, name="promotion-watch")
        watcher.start()
        yield
        stop.set()
        worker.cancel()

    app = FastAPI(title="clusterflow", summary="Assign clusters to new records with a published model",
                  lifespan=lifespan)

    def authorized(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(status_code=401, detail="a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(InputValidationError)
    async def invalid_records(request: Request, exc: InputValidationError):
        detail = [{"column": p.column, "rule": p.rule, "rows": list(p.rows), "hint": p.hint} for p in exc.problems]
        return JSONResponse(status_code=422, content={"message": str(exc), "detail": detail})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": source.current.model_id, "reload_error": source.last_error}

    @app.get("/model", dependencies=[Depends(authorized)])
    async def model_info() -> dict[str, Any]:
        return source.current.describe()

    @app.post("/predict", dependencies=[Depends(authorized)])
    async def predict(request: Request,
                      records: list[dict[str, Any]] | dict[str, Any] = Body(
                          ..., description="one record (an object of column: value) or a list of them")):
        rows = [records] if isinstance(records, dict) else records
        if not rows:
            raise InputValidationError([Problem(rule="no records", hint="send one record or a list of them")])
        served = source.current
        frame = records_frame(rows, served.model.roles_, image_root)
        assigned = await request.app.state.batcher.assign(served, frame)
        return JSONResponse({"model": served.model_id, "run": served.run_uri, "predictions": assigned})

    return app
