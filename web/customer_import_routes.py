"""Customer import in the browser (批量导入客户数据), all behind ``customers.import``.

Upload an .xlsx, see the mapping of its headers to fields (changeable) and the first rows
as they would import, choose update or skip for customers that exist, start. The import
runs as a background task on the loop (apps.customer_import writes in short batches) and
reports progress to the uploader's WebSockets through the EventHub:

    {"type": "customer_import.progress", "job", "rows_done", "rows_total"}
    {"type": "customer_import.finished", "job", "imported", "updated", "unchanged",
     "skipped", "rejected", "report_url"}
    {"type": "customer_import.failed", "job", "message"}

Jobs live in memory (a restart forgets them) with their files in a directory of their own
under ``work_dir``. A job is found only by its random id and only for the user who
uploaded it: the error report download takes no path from the request, so there is
nothing to traverse. The download is audited as an "export".
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.audit import AuditLog
from apps.customer_import import (
    CustomerImporter,
    CustomerImportError,
    ExistingCustomers,
    ImportResult,
    write_error_report,
)
from apps.customer_sheet import CustomerRow, Field, Preview
from web.auth import client_ip, services_of
from web.customers import API, BadInput, endpoint, invalid, json_object
from web.hub import EventHub
from web.i18n import translate
from web.templating import NavItem, language_of, render

logger = logging.getLogger(__name__)

IMPORT = "customers.import"
NAV: Final = (NavItem("/customers/import", "nav.customer_import", IMPORT),)
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
_MULTIPART_OVERHEAD_BYTES: Final = 64 * 1024  # boundaries, headers, the CSRF field
PREVIEW_ROWS: Final = 10
JOBS_KEPT_PER_USER: Final = 5
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_FIELD_CHOICES: Final = tuple(f.value for f in Field)


def _new_job_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class ImportWebServices:
    importer: CustomerImporter
    audit: AuditLog
    work_dir: Path  # one directory per job is made here
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    new_job_id: Callable[[], str] = _new_job_id


class JobState(enum.StrEnum):
    uploaded = "uploaded"
    running = "running"
    done = "done"
    failed = "failed"


@dataclass
class ImportJob:
    """One upload and its import; changed only on the event loop."""

    id: str
    user_id: int
    filename: str
    directory: Path
    state: JobState = JobState.uploaded
    mapping: dict[str, str] | None = None
    existing: ExistingCustomers = ExistingCustomers.UPDATE
    rows_done: int = 0
    rows_total: int = 0
    result: ImportResult | None = None
    error: str | None = None

    @property
    def upload(self) -> Path:
        return self.directory / "upload.xlsx"

    @property
    def report(self) -> Path:
        return self.directory / "errors.xlsx"

    @property
    def report_url(self) -> str | None:
        if self.result is None or not self.result.rejected:
            return None
        return f"/customers/import/{self.id}/errors.xlsx"


class Refused(Exception):
    """An upload or request refused; ``key`` names the message, ``status_code`` the answer."""

    def __init__(self, status_code: int, key: str, **params: object) -> None:
        super().__init__(key)
        self.status_code = status_code
        self.key = key
        self.params = params


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
            del self._jobs[old.id]
            shutil.rmtree(old.directory, ignore_errors=True)

    def get(self, job_id: str, user_id: int) -> ImportJob | None:
        """The job if ``user_id`` uploaded it; None for anyone else's or a made-up id."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        job = self._jobs.get(job_id)
        return job if job is not None and job.user_id == user_id else None

    def start(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def preview_json(preview: Preview) -> dict[str, Any]:
    rows = []
    for row in preview.rows:
        rows.append({
            "row": row.row,
            "ok": isinstance(row, CustomerRow),
            "values": [_cell(v) for v in row.values],
            "errors": [] if isinstance(row, CustomerRow) else [
                {"column": e.column, "header": e.header, "reason": e.reason}
                for e in row.errors],
        })
    return {"headers": [h or "" for h in preview.headers],
            "mapping": preview.mapping.as_dict(),
            "has_name_column": bool(preview.mapping.of(Field.NAME)),
            "rows": rows, "rows_estimate": preview.rows_estimate}


def result_json(result: ImportResult) -> dict[str, int]:
    return {"imported": result.imported, "updated": result.updated,
            "unchanged": result.unchanged, "skipped": result.skipped,
            "rejected": result.rejected}


def job_json(job: ImportJob) -> dict[str, Any]:
    return {"id": job.id, "state": job.state.value, "filename": job.filename,
            "existing": job.existing.value, "rows_done": job.rows_done,
            "rows_total": job.rows_total, "error": job.error,
            "result": None if job.result is None else result_json(job.result),
            "report_url": job.report_url}


def mapping_from(values: Mapping[str, Any], headers: list[str]) -> dict[str, str]:
    """``map-<column index>`` fields (the page's selects) as header -> field."""
    mapping: dict[str, str] = {}
    for index, header in enumerate(headers):
        chosen = values.get(f"map-{index}")
        if header and isinstance(chosen, str) and chosen:
            if chosen not in _FIELD_CHOICES:
                raise BadInput(f"unknown field '{chosen}' for column '{header}'")
            mapping[header] = chosen
    return mapping


class ImportPages:
    def __init__(self, services: ImportWebServices, jobs: ImportJobs | None = None) -> None:
        self.s = services
        self.jobs = jobs or ImportJobs()

    # -- steps shared by the pages and the API ---------------------------------------------

    async def _receive(self, request: Request) -> tuple[ImportJob, Preview]:
        try:
            return await self._receive_form(request)
        finally:
            await request.close()  # the upload's temporary file (Starlette leaves it open)

    async def _receive_form(self, request: Request) -> tuple[ImportJob, Preview]:
        limit = self.s.max_upload_bytes
        mb = limit // (1024 * 1024) or 1
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD_BYTES:
            # Refused before the body is read (an API client sending X-CSRF-Token; a form
            # post's body was read already, by the CSRF check looking for its token).
            raise Refused(413, "import.too_large", mb=mb)
        form = await request.form(max_files=1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Refused(400, "import.no_file")
        if upload.size is not None and upload.size > limit:
            raise Refused(413, "import.too_large", mb=mb)
        job_id = self.s.new_job_id()
        job = ImportJob(job_id, request.state.user.id, Path(upload.filename).name[:200],
                        self.s.work_dir / job_id)
        job.directory.mkdir(parents=True, exist_ok=False)
        await upload.seek(0)
        with job.upload.open("wb") as out:
            while chunk := await upload.read(1024 * 1024):
                out.write(chunk)
        try:
            preview = await self.s.importer.preview(job.upload, PREVIEW_ROWS)
        except CustomerImportError as error:
            shutil.rmtree(job.directory, ignore_errors=True)
            raise Refused(400, "import.unreadable", reason=str(error)) from None
        self.jobs.add(job)
        return job, preview

    async def _preview(self, job: ImportJob) -> Preview:
        return await self.s.importer.preview(job.upload, PREVIEW_ROWS, mapping=job.mapping)

    def _start(self, request: Request, job: ImportJob, existing: object,
               mapping: dict[str, str] | None) -> None:
        if job.state is not JobState.uploaded:
            raise Refused(409, "import.already_started")
        try:
            job.existing = ExistingCustomers(str(existing))
        except ValueError:
            raise BadInput("'existing' must be 'update' or 'skip'") from None
        if mapping is not None:
            job.mapping = mapping
        job.state = JobState.running
        self.jobs.start(self._run(job, services_of(request).hub, request.state.user.username,
                                  client_ip(request)))

    async def _run(self, job: ImportJob, hub: EventHub, username: str,
                   source_ip: str | None) -> None:
        def progress(rows_done: int, rows_total: int) -> None:
            job.rows_done, job.rows_total = rows_done, rows_total
            hub.publish(job.user_id, {"type": "customer_import.progress", "job": job.id,
                                      "rows_done": rows_done, "rows_total": rows_total})

        try:
            result = await self.s.importer.import_file(
                job.upload, existing=job.existing, mapping=job.mapping, progress=progress)
            if result.rejected:
                await asyncio.to_thread(write_error_report, result, job.report)
        except CustomerImportError as error:
            job.state, job.error = JobState.failed, str(error)
        except Exception as error:  # a background task has nobody else to tell
            logger.exception("customer import %s failed", job.id)
            job.state, job.error = JobState.failed, f"internal error: {type(error).__name__}"
        else:
            job.result, job.state = result, JobState.done
        if job.state is JobState.failed:
            hub.publish(job.user_id, {"type": "customer_import.failed", "job": job.id,
                                      "message": job.error})
            return
        assert job.result is not None
        try:
            await self.s.audit.record(
                "customers.import", actor_id=job.user_id, actor=username,
                target=f"customer_import:{job.id}",
                detail={"file": job.filename, **result_json(job.result)}, source_ip=source_ip)
        except Exception:
            logger.exception("audit entry of customer import %s not written", job.id)
        hub.publish(job.user_id, {"type": "customer_import.finished", "job": job.id,
                                  **result_json(job.result), "report_url": job.report_url})

    async def _download(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None or job.report_url is None or not job.report.is_file():
            return self._refusal(request, Refused(404, "import.not_found"))
        # Fail closed: a download that cannot be audited is not served.
        await self.s.audit.record(
            "export", actor_id=job.user_id, actor=request.state.user.username,
            target=f"customer_import:{job.id}",
            detail={"file": "errors.xlsx", "source_file": job.filename,
                    "rejected": job.result.rejected if job.result else 0},
            source_ip=client_ip(request))
        return FileResponse(job.report, media_type=XLSX_TYPE,
                            filename=f"import-errors-{job.id}.xlsx")

    def _refusal(self, request: Request, refused: Refused) -> Response:
        message = translate(language_of(request), refused.key, **refused.params)
        if request.url.path.startswith(API):
            return JSONResponse({"error": refused.key.split(".", 1)[1], "message": message},
                                status_code=refused.status_code)
        return render(request, "error.html", {"message": message},
                      status_code=refused.status_code)

    # -- API -------------------------------------------------------------------------------

    async def api_upload(self, request: Request) -> Response:
        """Upload an .xlsx (multipart field ``file``): the mapping found and a preview."""
        try:
            job, preview = await self._receive(request)
        except Refused as refused:
            return self._refusal(request, refused)
        return JSONResponse({**job_json(job), "preview": preview_json(preview)},
                            status_code=201)

    async def api_get(self, request: Request) -> Response:
        """An import of the caller's: its state, progress and counts (and the preview
        while it has not started)."""
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        body = job_json(job)
        if job.state is JobState.uploaded:
            body["preview"] = preview_json(await self._preview(job))
        return JSONResponse(body)

    async def api_start(self, request: Request) -> Response:
        """Start the import in the background (``existing``: update or skip; optional
        ``mapping``: header -> field); progress arrives over the WebSocket."""
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        try:
            body = await json_object(request)
            mapping = body.get("mapping")
            if mapping is not None and not (isinstance(mapping, dict) and all(
                    isinstance(v, str) and v in _FIELD_CHOICES for v in mapping.values())):
                raise BadInput(f"'mapping' must map headers to one of {list(_FIELD_CHOICES)}")
            self._start(request, job, body.get("existing", "update"), mapping)
        except BadInput as error:
            return invalid(str(error))
        except Refused as refused:
            return self._refusal(request, refused)
        return JSONResponse(job_json(job), status_code=202)

    async def api_download(self, request: Request) -> Response:
        """The error report (.xlsx) of one of the caller's imports (audited as export)."""
        return await self._download(request)

    # -- pages -----------------------------------------------------------------------------

    async def page_upload_form(self, request: Request) -> Response:
        return self._upload_page(request, None, 200)

    def _upload_page(self, request: Request, error: str | None, status_code: int) -> Response:
        return render(request, "customers/import_upload.html", {
            "error": error, "max_mb": self.s.max_upload_bytes // (1024 * 1024)},
            status_code=status_code)

    async def page_upload(self, request: Request) -> Response:
        try:
            job, _ = await self._receive(request)
        except Refused as refused:
            message = translate(language_of(request), refused.key, **refused.params)
            return self._upload_page(request, message, refused.status_code)
        return RedirectResponse(f"/customers/import/{job.id}", status_code=303)

    async def page_job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        preview = await self._preview(job) if job.state is JobState.uploaded else None
        return render(request, "customers/import_job.html", {
            "job": job, "preview": None if preview is None else preview_json(preview),
            "fields": _FIELD_CHOICES, "preview_rows": PREVIEW_ROWS})

    async def page_mapping(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        if job.state is not JobState.uploaded:
            return self._refusal(request, Refused(409, "import.already_started"))
        try:
            job.mapping = await self._form_mapping(request, job)
        except BadInput as error:
            return render(request, "error.html", {"message": str(error)}, status_code=400)
        return RedirectResponse(f"/customers/import/{job.id}", status_code=303)

    async def page_start(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        try:
            mapping = await self._form_mapping(request, job)
            self._start(request, job, (await request.form()).get("existing", "update"),
                        mapping)
        except BadInput as error:
            return render(request, "error.html", {"message": str(error)}, status_code=400)
        except Refused as refused:
            return self._refusal(request, refused)
        return RedirectResponse(f"/customers/import/{job.id}", status_code=303)

    async def page_download(self, request: Request) -> Response:
        return await self._download(request)

    async def _form_mapping(self, request: Request, job: ImportJob) -> dict[str, str]:
        form: FormData = await request.form()
        headers = preview_json(await self._preview(job))["headers"]
        return mapping_from(form, headers)


def routes(services: ImportWebServices, jobs: ImportJobs | None = None) -> list[BaseRoute]:
    p = ImportPages(services, jobs)
    job = "{job:str}"
    return [
        Route(f"{API}/customer-imports", endpoint(p.api_upload, IMPORT), methods=["POST"]),
        Route(f"{API}/customer-imports/{job}", endpoint(p.api_get, IMPORT), methods=["GET"]),
        Route(f"{API}/customer-imports/{job}/start", endpoint(p.api_start, IMPORT, request_body={
            "type": "object", "properties": {
                "existing": {"type": "string", "enum": ["update", "skip"]},
                "mapping": {"type": "object", "additionalProperties": {
                    "type": "string", "enum": list(_FIELD_CHOICES)}}}}),
              methods=["POST"]),
        Route(f"{API}/customer-imports/{job}/errors.xlsx", endpoint(p.api_download, IMPORT),
              methods=["GET"]),
        Route("/customers/import", endpoint(p.page_upload_form, IMPORT), methods=["GET"]),
        Route("/customers/import", endpoint(p.page_upload, IMPORT), methods=["POST"]),
        Route(f"/customers/import/{job}", endpoint(p.page_job, IMPORT), methods=["GET"]),
        Route(f"/customers/import/{job}/mapping", endpoint(p.page_mapping, IMPORT),
              methods=["POST"]),
        Route(f"/customers/import/{job}/start", endpoint(p.page_start, IMPORT),
              methods=["POST"]),
        Route(f"/customers/import/{job}/errors.xlsx", endpoint(p.page_download, IMPORT),
              methods=["GET"]),
    ]
