"""Errors that carry a user-facing report: what was wrong, where, and what to do."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One failed rule on the input: the column (or what else, ``where``), the rows, the rule and a hint."""

    rule: str
    column: str | None = None
    rows: tuple = ()
    hint: str = ""
    n_rows: int | None = field(default=None)
    where: str | None = None  # when not a column: e.g. "--k" for a parameter; default "table"

    def describe(self, max_rows: int = 10) -> str:
        where = f"column {self.column!r}" if self.column is not None else (self.where or "table")
        text = f"{where}: {self.rule}"
        if self.rows:
            total = self.n_rows if self.n_rows is not None else len(self.rows)
            shown = ", ".join(str(r) for r in self.rows[:max_rows])
            more = f" and {total - max_rows} more" if total > max_rows else ""
            text += f" (rows {shown}{more})"
        if self.hint:
            text += f" -> {self.hint}"
        return text


class ClusterflowError(Exception):
    """Base class of every error clusterflow raises on purpose.

    ``exit_code`` is what the command line exits with: 2 for a user's mistake (bad input,
    parameters or paths, reported without a traceback), 1 for a run that could not finish.
    """

    exit_code = 1


class InputValidationError(ClusterflowError, ValueError):
    """The input table, its roles or the run parameters broke one or more rules.

    All problems found are collected and reported together, as pandera's lazy
    validation does.
    """

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) with the input:"]
        lines += [f"  - {p.describe()}" for p in self.problems]
        super().__init__("\n".join(lines))


class RunExistsError(ClusterflowError, FileExistsError):
    """The output folder already holds a published run; it is never overwritten."""

    exit_code = 2


class RunNotFoundError(ClusterflowError, FileNotFoundError):
    """No complete run (a manifest with status 'complete') at the given location."""

    exit_code = 2


class AllCandidatesFailedError(ClusterflowError, RuntimeError):
    """Every (algorithm, k) candidate failed to train, so there is no model to publish."""


class IntegrityError(ClusterflowError):
    """A published file or manifest is not what the run published (changed, damaged, unlisted or unsigned);
    nothing of it is loaded."""

    exit_code = 2


class RunLockedError(ClusterflowError):
    """Another process is changing the run (it holds the run's lock)."""


class ConcurrentChangeError(ClusterflowError):
    """The run changed while this change ran, so this change was not published."""
