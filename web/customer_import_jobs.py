"""Customer import jobs in memory, the checked rows of each on disk (for paging), and
their JSON shapes in the API.

A job is one upload: checked in the background (every row planned against the database,
nothing written), then, once its owner starts it, imported in the background. The check
writes one JSON line per row to the job's directory and keeps the byte offset of each
line, so that any page of the preview, of all rows or of one outcome, is one seek and a
few reads however long the sheet is.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import shutil
from array import array
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from apps.customer_import import (
    ConflictChoice,
    ExistingCustomers,
    ImportResult,
    RowOutcome,
    RowPlan,
    SheetCheck,
)
from apps.customer_reasons import Reason
from web.customer_messages import say_reason

JOBS_KEPT_PER_USER: Final = 5
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class JobState(enum.StrEnum):
    checking = "checking"  # the check runs; the preview comes when it is done
    checked = "checked"  # the preview is there; the owner may start the import
    check_failed = "check_failed"  # the sheet broke off while it was checked
    running = "running"
    done = "done"
    failed = "failed"


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def plan_json(plan: RowPlan) -> dict[str, Any]:
    """One checked row as stored and as the API shows it (before its message)."""
    return {
        "row": plan.row,
        "outcome": plan.outcome.value,
        "values": [_cell(v) for v in plan.values],
        "changes": [change.value for change in plan.changes],
        "customer_id": plan.customer_id,
        "existing_name": plan.existing_name,
        "sheet_name": plan.sheet_name,
        "number": plan.number,
        # reason: English; key and params word it in the reader's language.
        "errors": [{"column": e.column, "header": e.header, "reason": str(e.reason),
                    "key": e.reason.key, "params": dict(e.reason.params)}
                   for e in plan.errors],
    }


class CheckedRows:
    """The rows of one check, in sheet order: a file of JSON lines and their offsets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out: IO[bytes] | None = path.open("wb")
        self._size = 0
        # Outcome ("" for every row) -> the byte offset of each of its rows.
        self._offsets: dict[str, array[int]] = {"": array("q")}
        self._offsets.update({outcome.value: array("q") for outcome in RowOutcome})

    def append(self, plans: Sequence[RowPlan]) -> None:
        assert self._out is not None, "appended to a finished check"
        lines = []
        for plan in plans:
            line = json.dumps(plan_json(plan), ensure_ascii=False).encode() + b"\n"
            self._offsets[""].append(self._size)
            self._offsets[plan.outcome.value].append(self._size)
            self._size += len(line)
            lines.append(line)
        self._out.write(b"".join(lines))

    def finish(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def discard(self) -> None:
        self.finish()
        self.path.unlink(missing_ok=True)

    def count(self, outcome: RowOutcome | None = None) -> int:
        return len(self._offsets[outcome.value if outcome else ""])

    def page(self, offset: int, limit: int, outcome: RowOutcome | None = None,
             ) -> list[dict[str, Any]]:
        """Rows ``offset`` to ``offset + limit`` (of one outcome, or of all)."""
        offsets = self._offsets[outcome.value if outcome else ""][offset:offset + limit]
        if not offsets:
            return []
        rows = []
        with self.path.open("rb") as stored:
            for start in offsets:
                stored.seek(start)
                rows.append(json.loads(stored.readline()))
        return rows


@dataclass
class ImportJob:
    """One upload, its check and its import; changed only on the event loop."""

    id: str
    user_id: int
    filename: str
    directory: Path
    state: JobState = JobState.checking
    mapping: dict[str, str] | None = None
    existing: ExistingCustomers = ExistingCustomers.UPDATE
    conflicts: ConflictChoice = ConflictChoice.SKIP  # for every conflict row ...
    conflict_rows: dict[int, ConflictChoice] = field(default_factory=dict)  # ... but these
    check: SheetCheck | None = None
    rows: CheckedRows | None = None
    checks_started: int = 0
    checking_task: asyncio.Task[None] | None = field(default=None, repr=False)
    rows_done: int = 0  # of the check, then of the import
    rows_total: int = 0
    result: ImportResult | None = None
    error: Reason | None = None  # why the check or the import failed
    lang: str = "zh"  # of the uploader's page: the language of messages pushed to them

    @property
    def upload(self) -> Path:
        return self.directory / "upload.xlsx"

    def report(self, lang: str) -> Path:
        """The error report in ``lang``, written when it is first downloaded."""
        return self.directory / f"errors-{lang}.xlsx"

    def error_text(self, lang: str) -> str | None:
        return None if self.error is None else say_reason(lang, self.error)

    @property
    def report_url(self) -> str | None:
        if self.result is None or not self.result.rejected:
            return None
        return f"/customers/import/{self.id}/errors.xlsx"

    def next_rows_file(self) -> Path:
        """A file of its own for each check: a cancelled one may still hold its own."""
        self.checks_started += 1
        return self.directory / f"checked-{self.checks_started}.jsonl"

    def stop_checking(self) -> None:
        if self.checking_task is not None:
            self.checking_task.cancel()
            self.checking_task = None


@dataclass
class ImportJobs:
    """The jobs of this process; each user keeps their newest few (older files go)."""

    kept_per_user: int = JOBS_KEPT_PER_USER
    _jobs: dict[str, ImportJob] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def add(self, job: ImportJob) -> None:
        self._jobs[job.id] = job
        own = [j for j in self._jobs.values()
               if j.user_id == job.user_id and j.state is not JobState.running]
        for old in own[:-self.kept_per_user]:
            self.remove(old)

    def remove(self, job: ImportJob) -> None:
        self._jobs.pop(job.id, None)
        job.stop_checking()
        shutil.rmtree(job.directory, ignore_errors=True)

    def get(self, job_id: str, user_id: int) -> ImportJob | None:
        """The job if ``user_id`` uploaded it; None for anyone else's or a made-up id."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        job = self._jobs.get(job_id)
        return job if job is not None and job.user_id == user_id else None

    def start(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task


# ---- JSON shapes ----------------------------------------------------------------------------


def check_json(check: SheetCheck) -> dict[str, Any]:
    return {"headers": [h or "" for h in check.headers],
            "mapping": check.mapping.as_dict(),
            "has_name_column": check.has_name_column,
            "counts": {outcome.value: n for outcome, n in check.counts.items()},
            "groups_created": check.groups_created}


def result_json(result: ImportResult) -> dict[str, int]:
    return {"imported": result.imported, "updated": result.updated,
            "unchanged": result.unchanged, "skipped": result.skipped,
            "rejected": result.rejected, "conflicts": len(result.conflicts)}


def job_json(job: ImportJob, lang: str) -> dict[str, Any]:
    return {"id": job.id, "state": job.state.value, "filename": job.filename,
            "existing": job.existing.value, "conflicts": job.conflicts.value,
            "conflict_rows": {str(row): choice.value
                              for row, choice in sorted(job.conflict_rows.items())},
            "rows_done": job.rows_done, "rows_total": job.rows_total,
            "error": job.error_text(lang),
            "check": None if job.check is None else check_json(job.check),
            "result": None if job.result is None else result_json(job.result),
            "report_url": job.report_url}
