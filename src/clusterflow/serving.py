"""Online cluster assignment: JSON records in, cluster and per-cluster probabilities out.

The served model is loaded once (through :func:`clusterflow.load_model`, so only
published models load) and, for a dataset, its promotion pointer is watched: a newly
promoted model is loaded beside the old one and swapped in by one reference
assignment, so a request always finishes on the model it started with and none is
dropped. Requests that arrive while a batch is being assigned are assigned together
in the next one: their values are checked by the rules of their columns' roles and
featurized (:mod:`clusterflow.record_features`: no DataFrame for numeric and
categorical columns), and the model's reducer and clusterer are called once per batch,
not once per request.

Nothing here knows about Prefect; :func:`build_app` returns a FastAPI application.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sklearn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from .errors import InputValidationError, Problem, RunNotFoundError
from .input_schema import ID_CHECK, column_checks
from .model import ROW_ID, ClusterModel, load_model
from .modalities.base import ColumnCheck
from .modalities.image import prepare_image_columns
from .promotion import Promotion, read_promoted
from .record_features import RecordFeaturizer, Rows
from .run_folder import RunFolder

logger = logging.getLogger(__name__)

TOKEN_ENV = "CLUSTERFLOW_SERVE_TOKEN"
MAX_BATCH_ROWS = 4096
INLINE_ROWS = 1000  # larger batches go to a thread, so that /health and small requests are not held up
SCALARS = (str, int, float, bool)  # what a record's value may be besides null; each role's checks do the rest
MISSING_COLUMN_HINT = "the model was trained with it; send it in every record (null for a missing value)"
_ABSENT = object()
RECORDS_BODY = {"required": True, "content": {"application/json": {"schema": {
    "description": "one record (an object of column: value) or a list of them",
    "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}, "minItems": 1}]}}}}


@dataclass(frozen=True)
class ServedModel:
    """A loaded model, where it came from, and what serving it needs: its columns' checks and its featurizer."""

    model: ClusterModel
    model_uri: str
    promotion: Promotion | None = None
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    expected: dict[str, str] = field(init=False)  # column -> role, of every column the model reads
    checks: list[tuple[ColumnCheck, list[str]]] = field(init=False)  # each check of a role, and the role's columns
    features: RecordFeaturizer = field(init=False)
    images: tuple[str, ...] = field(init=False)  # the image columns
    cluster_names: list[str] = field(init=False)  # the keys of each row's probabilities

    def __post_init__(self):
        expected = {c: r for c, r in self.model.roles_.items() if r != "ignore"}
        by_role = {role: checks for role, checks in column_checks().items() if role != "id"}  # see record_rows
        checks: dict[ColumnCheck, list[str]] = {}
        for column, role in expected.items():
            for check in by_role.get(role, ()):
                checks.setdefault(check, []).append(column)
        object.__setattr__(self, "expected", expected)
        object.__setattr__(self, "checks", list(checks.items()))
        object.__setattr__(self, "features", RecordFeaturizer(self.model.pipeline_[0]))
        object.__setattr__(self, "images", tuple(c for c, r in expected.items() if r == "image"))
        object.__setattr__(self, "cluster_names", [str(int(c)) for c in self.model.clusters_])

    @property
    def inline(self) -> bool:
        """Whether a batch is cheap enough to assign in the event loop (no DataFrame, no image files)."""
        return self.features.fast and not self.images

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
            "schema": dict(self.expected),
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


def read_records(body: bytes) -> list[dict[str, Any]]:
    """The records of a request body: one JSON object or a non-empty list of them."""
    try:
        records = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputValidationError([Problem(rule=f"the body is not valid JSON ({exc})",
                                            hint="send one record (an object of column: value) or a list of them")])
    records = [records] if isinstance(records, dict) else records
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise InputValidationError([Problem(rule="the body is not a record or a non-empty list of records",
                                            hint="send one record (an object of column: value) or a list of them")])
    return records


def record_rows(records: list[dict[str, Any]], expected: dict[str, str]) -> Rows:
    """The values of each column the model reads, with the problems of the records' shape: each missing
    column, each column holding values that are not JSON scalars, repeated ids (the roles' checks come
    later, per batch: :func:`check_batch`). Missing and unusable values are held as null."""
    problems, columns = [], {}
    for column, role in expected.items():
        values = columns[column] = [record.get(column, _ABSENT) for record in records]
        absent = tuple(i for i, value in enumerate(values) if value is _ABSENT)
        wrong = tuple(i for i, value in enumerate(values)
                      if value is not None and value is not _ABSENT and type(value) not in SCALARS)
        if absent:
            problems.append(Problem(rule="column is missing", column=column, rows=absent, hint=MISSING_COLUMN_HINT))
        if wrong:
            problems.append(Problem(rule="values are not strings, numbers or booleans (or null)", column=column,
                                    rows=wrong, hint=f"the column's role is {role}: send one value per record, "
                                                     "not a list or an object"))
        for i in absent + wrong:
            values[i] = None
        if role == "id" and len(values) > 1:
            problems += _repeated_ids(column, values)
    return Rows(records, columns, problems)


def _repeated_ids(column: str, values: list) -> list[Problem]:
    """The input schema's id rule (:data:`~clusterflow.input_schema.ID_CHECK`: no id twice) on one request's ids,
    in plain Python: it runs on every request, and a pandas Series per request costs more than the assignment."""
    counts: dict = {}
    for value in values:
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    repeated = tuple(i for i, value in enumerate(values) if value is not None and counts[value] > 1)
    return [Problem(rule=ID_CHECK.error, column=column, rows=repeated, hint="each record of a request needs its own id")
            ] if repeated else []


def check_batch(served: ServedModel, batch: list[Rows], image_root: str | None) -> list[list[Problem]]:
    """Each request's broken rules: those of its records' shape (:func:`record_rows`), the checks of each
    column's role (:attr:`Modality.checks`), its image files.

    Null values are not checked (columns are nullable, as in the input schema). A row-wise
    check runs once over every request's values; a check of a whole column, once per request.
    """
    problems = [list(rows.problems) for rows in batch]
    sizes = [len(rows) for rows in batch]
    for check, columns in served.checks:
        if check.row_wise:  # one call for every column of the role, over every request
            values = [v for column in columns for rows in batch for v in rows.columns[column]]
            failing = _split_rows(_failing_rows(check, values, drop_nulls=False), sizes * len(columns))
            found = {column: failing[j * len(batch):(j + 1) * len(batch)] for j, column in enumerate(columns)}
        else:
            found = {column: [_failing_rows(check, rows.columns[column]) for rows in batch] for column in columns}
        for column, failing in found.items():
            for request_problems, rows in zip(problems, failing):
                if rows is not None:
                    request_problems.append(Problem(rule=check.error, column=column, rows=rows, hint=check.hint))
    images = served.images
    for i, rows in enumerate(batch if images else ()):
        if not problems[i]:
            if image_root is None:
                problems[i] += [Problem(rule="image columns are not accepted by this service", column=c,
                                        hint="start the service with --image-root DIR to read image files under DIR")
                                for c in images]
            else:
                frame, image_problems = prepare_image_columns(rows.frame(), list(images), image_root)
                problems[i] += image_problems
                rows.replace(frame)
    return problems


def _failing_rows(check: ColumnCheck, values: list, drop_nulls: bool = True) -> tuple[int, ...] | None:
    """The rows of the present values that fail ``check`` (empty when it fails the column as a whole);
    None when they pass.

    ``drop_nulls`` checks the values as the column of a table holding them (its dtype
    inferred with the nulls, as pandera sees it); a row-wise check needs only the present values.
    """
    if drop_nulls:
        series = pd.Series(values).dropna()
        rows = series.index.to_numpy()
    else:
        rows = np.array([i for i, value in enumerate(values) if value is not None], dtype=int)
        series = pd.Series([values[i] for i in rows], dtype=None if len(rows) else object)
    if series.empty:
        return None
    passed = check.test(series)
    if isinstance(passed, (bool, np.bool_)):
        return None if passed else ()
    failing = tuple(int(i) for i in rows[~np.asarray(passed, dtype=bool)])
    return failing or None


def _split_rows(rows: tuple[int, ...] | None, sizes: list[int]) -> list[tuple[int, ...] | None]:
    """Rows of concatenated parts (of ``sizes`` rows each) as each part's own rows."""
    if rows is None:
        return [None] * len(sizes)
    if not rows:  # failed as a whole: every request
        return [()] * len(sizes)
    offsets = np.cumsum([0, *sizes])
    owners = np.searchsorted(offsets, rows, side="right") - 1
    return [tuple(int(r - offsets[i]) for r, o in zip(rows, owners) if o == i) or None for i in range(len(sizes))]


def assign_batch(served: ServedModel, batch: list[Rows], image_root: str | None = None
                 ) -> list[list[dict[str, Any]] | InputValidationError]:
    """Each request's row results (id, cluster, probabilities), or the InputValidationError of its records.

    The valid requests' rows are featurized, reduced and assigned together.
    """
    problems = check_batch(served, batch, image_root)
    valid = [rows for rows, found in zip(batch, problems) if not found]
    results: list = [InputValidationError(found) if found else None for found in problems]
    if not valid:
        return results
    model = served.model
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):  # checked once, at fit
        Z = served.features.transform(valid)
        if model.pipeline_[1] != "passthrough":
            Z = model.pipeline_[1].transform(Z)
        labels = model.labels_of(Z).tolist()
        proba = np.round(model.pipeline_[-1].predict_proba(Z), 6).tolist()
    names = served.cluster_names
    id_name = model.id_column_ or ROW_ID
    start = 0
    for i, found in enumerate(problems):
        if found:
            continue
        rows = batch[i]
        ids = rows.columns[model.id_column_] if model.id_column_ else range(len(rows))
        results[i] = [{id_name: ids[r], "cluster": labels[start + r], "probabilities": dict(zip(names, proba[start + r]))}
                      for r in range(len(rows))]
        start += len(rows)
    return results


class Batcher:
    """Assigns queued requests together: in the event loop when the model's featurizer needs no DataFrame
    and the batch is small (a millisecond or two), else in a worker thread.

    Each request is assigned by the model it was read for; a batch holds requests of one
    model, so a swap never mixes models within a batch.
    """

    def __init__(self, image_root: str | None = None, max_rows: int = MAX_BATCH_ROWS):
        self.image_root, self.max_rows = image_root, max_rows
        self.queue: asyncio.Queue = asyncio.Queue()
        self._next = None  # a request that starts the next batch (it came for another model)

    async def assign(self, served: ServedModel, rows: Rows) -> list[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((served, rows, future))
        result = await future
        if isinstance(result, InputValidationError):
            raise result
        return result

    async def run(self) -> None:
        while True:
            batch = [self._next or await self.queue.get()]
            await asyncio.sleep(0)  # one turn of the loop: requests already read join this batch (twice as many)
            self._next = None
            served, size = batch[0][0], len(batch[0][1])
            while size < self.max_rows and not self.queue.empty():
                item = self.queue.get_nowait()
                if item[0] is not served:
                    self._next = item
                    break
                batch.append(item)
                size += len(item[1])
            await self._assign(served, batch)

    async def _assign(self, served: ServedModel, batch: list) -> None:
        try:
            results = await self._call(served, [rows for _, rows, _ in batch])
        except Exception:  # one request's rows broke the batch: assign each alone so only that one fails
            results = []
            for _, rows, future in batch:
                try:
                    results.append((await self._call(served, [rows]))[0])
                except Exception as exc:
                    future.set_exception(exc)
                    results.append(None)
        for (_, _, future), result in zip(batch, results):
            if result is not None and not future.done():
                future.set_result(result)

    async def _call(self, served: ServedModel, batch: list[Rows]) -> list:
        if served.inline and sum(len(rows) for rows in batch) <= INLINE_ROWS:
            return assign_batch(served, batch, self.image_root)
        return await asyncio.to_thread(assign_batch, served, batch, self.image_root)


def build_app(source: ModelSource, token: str | None = None, image_root: str | None = None):
    """The FastAPI application: ``POST /predict``, ``GET /model``, ``GET /health``.

    With a ``token``, ``/predict`` and ``/model`` need ``Authorization: Bearer <token>``;
    ``/health`` stays open for load balancers and probes.
    """
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(image_root)
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

    def authorize(request: Request) -> None:
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

    @app.get("/model")
    async def model_info(request: Request) -> dict[str, Any]:
        authorize(request)
        return source.current.describe()

    # The body is read and parsed here (orjson) rather than declared as a parameter: FastAPI's
    # validation of a list of objects costs more than the assignment itself.
    @app.post("/predict", openapi_extra={"requestBody": RECORDS_BODY})
    async def predict(request: Request) -> Response:
        authorize(request)
        records = read_records(await request.body())
        served = source.current
        assigned = await request.app.state.batcher.assign(served, record_rows(records, served.expected))
        return Response(orjson.dumps({"model": served.model_id, "run": served.run_uri, "predictions": assigned}),
                        media_type="application/json")

    return app
