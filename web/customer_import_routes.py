"""Customer import in the browser (批量导入客户数据), all behind ``customers.import``.

Upload an .xlsx; every row is checked against the database in the background (nothing
written) and the preview tells, for each row, what the import will do: new, update
(with the fields that change), unchanged, conflict (the number is an existing
customer's under another name: both names shown) or rejected (and why), with the count
of each, a page at a time. Change the mapping of headers to fields (the check runs
again), choose what conflicts do (for all of them, and row by row: skip, the default,
update that customer, or add a new one sharing the number) and update or skip for
customers that exist, then start. The upload waits a few seconds for the check, so a
small sheet's preview comes at once. The check and the import run as background tasks
on the loop (apps.customer_import works in short batches) and report to the uploader's
WebSockets through the EventHub:

    {"type": "customer_import.checking", "job", "rows_done", "rows_total"}
    {"type": "customer_import.checked", "job", "counts"}
    {"type": "customer_import.progress", "job", "rows_done", "rows_total"}
    {"type": "customer_import.finished", "job", "imported", "updated", "unchanged",
     "skipped", "rejected", "conflicts", "report_url"}
    {"type": "customer_import.failed", "job", "message"}

Every page has its API twin under /api/v1/customer-imports. Jobs live in memory (a
restart forgets them) with their files in a directory of their own under ``work_dir``.
A job is found only by its random id and only for the user who uploaded it: the error
report download takes no path from the request, so there is nothing to traverse. The
download is audited as an "export".
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.audit import AuditLog
from apps.customer_import import (
    ConflictChoice,
    CustomerImporter,
    CustomerImportError,
    ExistingCustomers,
    RowOutcome,
    write_error_report,
)
from apps.customer_reasons import reason as reason_of
from apps.customer_sheet import Field
from web.auth import client_ip, services_of
from web.customer_import_jobs import (
    CheckedRows,
    ImportJob,
    ImportJobs,
    JobState,
    check_json,
    job_json,
    result_json,
)
from web.customer_messages import column_label, say_reason
from web.customers import API, BadInput, endpoint, invalid, json_object, query_int
from web.hub import EventHub
from web.i18n import translate
from web.inputs import reason
from web.templating import NavItem, language_of, render

logger = logging.getLogger(__name__)

IMPORT = "customers.import"
NAV: Final = (NavItem("/customers/import", "nav.customer_import", IMPORT),)
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
_MULTIPART_OVERHEAD_BYTES: Final = 64 * 1024  # boundaries, headers, the CSRF field
PER_PAGE: Final = 50  # preview rows per page (the API's default)
MAX_PER_PAGE: Final = 500
CHECK_WAIT_S: Final = 5.0  # how long an upload waits for its check before answering
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FIELD_CHOICES: Final = tuple(f.value for f in Field)
_CONFLICT_CHOICES: Final = tuple(c.value for c in ConflictChoice)
_MAX_ROW: Final = 1_048_576  # Excel's last row


def _new_job_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class ImportWebServices:
    importer: CustomerImporter
    audit: AuditLog
    work_dir: Path  # one directory per job is made here
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    new_job_id: Callable[[], str] = _new_job_id
    check_wait_s: float = CHECK_WAIT_S


class Refused(Exception):
    """An upload or request refused; ``key`` names the message, ``status_code`` the answer."""

    def __init__(self, status_code: int, key: str, **params: object) -> None:
        super().__init__(key)
        self.status_code = status_code
        self.key = key
        self.params = params


# ---- what the requests say ------------------------------------------------------------------


def describe(lang: str, row: Mapping[str, Any]) -> str:
    """What a checked row will do, in words."""
    outcome = row["outcome"]
    params: dict[str, object] = {}
    if outcome == RowOutcome.UPDATE:
        params["changes"] = translate(lang, "import.list_separator").join(
            translate(lang, f"import.change.{change}") for change in row["changes"])
    elif outcome == RowOutcome.CONFLICT:
        params.update(number=row["number"], existing=row["existing_name"],
                      sheet=row["sheet_name"])
    elif outcome == RowOutcome.REJECTED:
        params["reasons"] = translate(lang, "import.reason_list_separator").join(
            _error_text(lang, error) for error in row["errors"])
    return translate(lang, f"import.outcome.{outcome}", **params)


def _error_text(lang: str, error: Mapping[str, Any]) -> str:
    """A stored row error (web.customer_import_jobs.plan_json) in ``lang``."""
    text = translate(lang, f"import.reason.{error['key']}", **error["params"])
    if not error["column"]:
        return text
    return translate(lang, "import.column_reason",
                     column=column_label(lang, error["column"], error["header"]), reason=text)


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


def _mapping_of(body: Mapping[str, Any]) -> dict[str, str] | None:
    mapping = body.get("mapping")
    if mapping is not None and not (isinstance(mapping, dict) and all(
            isinstance(v, str) and v in _FIELD_CHOICES for v in mapping.values())):
        raise BadInput(f"'mapping' must map headers to one of {list(_FIELD_CHOICES)}")
    return mapping


def _one_of(name: str, choices: tuple[str, ...]) -> BadInput:
    return BadInput.of("import.bad_choice", name=name, choices=", ".join(choices))


def _choice(value: object, name: str) -> ConflictChoice:
    if isinstance(value, str) and value in _CONFLICT_CHOICES:
        return ConflictChoice(value)
    raise _one_of(name, _CONFLICT_CHOICES)


def choose(job: ImportJob, conflicts: object, rows: Mapping[str, object]) -> None:
    """Set what conflicts do: ``conflicts`` for all (None: as it is), ``rows`` (Excel
    row number -> choice, None or "" to follow the choice for all) for single rows.
    Checks everything before changing anything."""
    default = job.conflicts if conflicts is None else _choice(conflicts, "conflicts")
    chosen: dict[int, ConflictChoice | None] = {}
    for row, value in rows.items():
        if not (row.isascii() and row.isdigit() and 0 < int(row) <= _MAX_ROW):
            raise BadInput.of("import.bad_row", row=row[:20])
        chosen[int(row)] = None if value in (None, "") else _choice(value, row)
    job.conflicts = default
    for row_number, choice in chosen.items():
        if choice is None:
            job.conflict_rows.pop(row_number, None)
        else:
            job.conflict_rows[row_number] = choice


# ---- pages and API --------------------------------------------------------------------------


class ImportPages:
    def __init__(self, services: ImportWebServices, jobs: ImportJobs | None = None) -> None:
        self.s = services
        self.jobs = jobs or ImportJobs()

    # -- steps shared by the pages and the API ---------------------------------------------

    async def _receive(self, request: Request) -> ImportJob:
        try:
            job = await self._receive_form(request)
        finally:
            await request.close()  # the upload's temporary file (Starlette leaves it open)
        self.jobs.add(job)
        await self._check(request, job)
        if job.state is JobState.check_failed:  # the file could not be read at all
            self.jobs.remove(job)
            raise Refused(400, "import.unreadable",
                          reason=job.error_text(language_of(request)))
        return job

    async def _receive_form(self, request: Request) -> ImportJob:
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
                        self.s.work_dir / job_id, lang=language_of(request))
        job.directory.mkdir(parents=True, exist_ok=False)
        try:
            await upload.seek(0)
            with job.upload.open("wb") as out:
                while chunk := await upload.read(1024 * 1024):
                    out.write(chunk)
        except BaseException:
            shutil.rmtree(job.directory, ignore_errors=True)
            raise
        return job

    async def _check(self, request: Request, job: ImportJob) -> None:
        """(Re)start the job's check and wait a little for it to finish."""
        job.stop_checking()
        if job.rows is not None:
            job.rows.discard()
        job.state, job.rows, job.error, job.rows_done, job.rows_total = (
            JobState.checking, None, None, 0, 0)
        job.checking_task = self.jobs.start(self._run_check(job, services_of(request).hub))
        await asyncio.wait({job.checking_task}, timeout=self.s.check_wait_s)

    async def _run_check(self, job: ImportJob, hub: EventHub) -> None:
        def progress(rows_done: int, rows_total: int) -> None:
            job.rows_done, job.rows_total = rows_done, rows_total
            hub.publish(job.user_id, {"type": "customer_import.checking", "job": job.id,
                                      "rows_done": rows_done, "rows_total": rows_total})

        rows = CheckedRows(job.next_rows_file())
        try:
            check = await self.s.importer.check_file(
                job.upload, mapping=job.mapping, progress=progress, on_rows=rows.append)
        except asyncio.CancelledError:  # a newer check replaces this one
            rows.discard()
            raise
        except Exception as error:
            rows.discard()
            if isinstance(error, CustomerImportError):
                job.error = error.reason
            else:  # a background task has nobody else to tell
                logger.exception("check of customer import %s failed", job.id)
                job.error = reason_of("internal_error", name=type(error).__name__)
            job.state, job.checking_task = JobState.check_failed, None
            hub.publish(job.user_id, {"type": "customer_import.failed", "job": job.id,
                                      "message": job.error_text(job.lang)})
            return
        rows.finish()
        job.check, job.rows, job.state, job.checking_task = check, rows, JobState.checked, None
        hub.publish(job.user_id, {"type": "customer_import.checked", "job": job.id,
                                  "counts": check_json(check)["counts"]})

    def _changeable(self, job: ImportJob) -> None:
        """Refused unless the job has not started (its mapping and choices can change)."""
        if job.state in (JobState.running, JobState.done, JobState.failed):
            raise Refused(409, "import.already_started")

    async def _remap(self, request: Request, job: ImportJob, mapping: dict[str, str]) -> None:
        self._changeable(job)
        if job.check is None:
            raise Refused(409, "import.still_checking")
        job.mapping = mapping
        await self._check(request, job)

    def _start(self, request: Request, job: ImportJob, existing: ExistingCustomers,
               mapping: dict[str, str] | None) -> None:
        self._changeable(job)
        if job.state is JobState.checking:
            raise Refused(409, "import.still_checking")
        if job.state is JobState.check_failed:
            raise Refused(409, "import.check_failed",
                          reason=job.error_text(language_of(request)))
        job.existing = existing
        if mapping is not None:
            job.mapping = mapping
        job.state, job.rows_done, job.rows_total = JobState.running, 0, 0
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
                job.upload, existing=job.existing, conflicts=job.conflicts,
                conflict_rows=job.conflict_rows, mapping=job.mapping, progress=progress)
        except CustomerImportError as error:
            job.state, job.error = JobState.failed, error.reason
        except Exception as error:  # a background task has nobody else to tell
            logger.exception("customer import %s failed", job.id)
            job.state, job.error = JobState.failed, reason_of(
                "internal_error", name=type(error).__name__)
        else:
            job.result, job.state = result, JobState.done
        if job.state is JobState.failed:
            hub.publish(job.user_id, {"type": "customer_import.failed", "job": job.id,
                                      "message": job.error_text(job.lang)})
            return
        assert job.result is not None
        try:
            await self.s.audit.record(
                "customers.import", actor_id=job.user_id, actor=username,
                target=f"customer_import:{job.id}",
                detail={"file": job.filename, **result_json(job.result),
                        "conflicts_choice": job.conflicts.value,
                        "conflict_rows": {str(row): choice.value
                                          for row, choice in job.conflict_rows.items()}},
                source_ip=source_ip)
        except Exception:
            logger.exception("audit entry of customer import %s not written", job.id)
        hub.publish(job.user_id, {"type": "customer_import.finished", "job": job.id,
                                  **result_json(job.result), "report_url": job.report_url})

    def _preview(self, request: Request, job: ImportJob, per_page: int) -> dict[str, Any]:
        """A page of the checked rows (?page=, ?outcome=), each with what it will do."""
        if job.rows is None or job.check is None:
            raise Refused(409, "import.still_checking")
        raw = request.query_params.get("outcome") or None
        try:
            outcome = None if raw is None else RowOutcome(raw)
        except ValueError:
            raise _one_of("outcome", tuple(o.value for o in RowOutcome)) from None
        total = job.rows.count(outcome)
        pages = max(1, math.ceil(total / per_page))
        page = query_int(request, "page", 1, 1, 1_000_000_000)
        lang = language_of(request)
        rows = [{**row, "message": describe(lang, row)}
                for row in job.rows.page((page - 1) * per_page, per_page, outcome)]
        return {"counts": check_json(job.check)["counts"], "outcome": raw, "total": total,
                "page": page, "per_page": per_page, "pages": pages, "rows": rows}

    async def _download(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None or job.result is None or job.report_url is None:
            return self._refusal(request, Refused(404, "import.not_found"))
        lang = language_of(request)
        report = job.report(lang)
        if not report.is_file():  # the report in the reader's language, written once
            await asyncio.to_thread(
                write_error_report, job.result, report,
                say=lambda why: say_reason(lang, why),
                column_label=lambda error: column_label(lang, error.column or "",
                                                        error.header))
        # Fail closed: a download that cannot be audited is not served.
        await self.s.audit.record(
            "export", actor_id=job.user_id, actor=request.state.user.username,
            target=f"customer_import:{job.id}",
            detail={"file": "errors.xlsx", "source_file": job.filename,
                    "rejected": job.result.rejected if job.result else 0},
            source_ip=client_ip(request))
        return FileResponse(report, media_type=XLSX_TYPE,
                            filename=f"import-errors-{job.id}.xlsx")

    def _refusal(self, request: Request, refused: Refused) -> Response:
        message = translate(language_of(request), refused.key, **refused.params)
        if request.url.path.startswith(API):
            return JSONResponse({"error": refused.key.split(".", 1)[1], "message": message},
                                status_code=refused.status_code)
        return render(request, "error.html", {"message": message},
                      status_code=refused.status_code)

    def _job(self, request: Request) -> ImportJob:
        job = self.jobs.get(request.path_params["job"], request.state.user.id)
        if job is None:
            raise Refused(404, "import.not_found")
        return job

    async def _answer(self, request: Request, act: Callable[[], Awaitable[Response]],
                      ) -> Response:
        """``act()``, or the answer to its refusal: on the API a JSON error, on a page the
        error page."""
        try:
            return await act()
        except Refused as refused:
            return self._refusal(request, refused)
        except BadInput as error:
            message = reason(request, error)
            if request.url.path.startswith(API):
                return invalid(message)
            return render(request, "error.html", {"message": message}, status_code=400)

    # -- API -------------------------------------------------------------------------------

    async def api_upload(self, request: Request) -> Response:
        """Upload an .xlsx (multipart field ``file``); its check starts. The answer waits
        a few seconds for it: state ``checked`` with the counts, or ``checking``."""
        async def act() -> Response:
            job = await self._receive(request)
            return JSONResponse(job_json(job, language_of(request)), status_code=201)
        return await self._answer(request, act)

    async def api_get(self, request: Request) -> Response:
        """An import of the caller's: its state, the check's counts, progress, results."""
        async def act() -> Response:
            return JSONResponse(job_json(self._job(request), language_of(request)))
        return await self._answer(request, act)

    async def api_preview(self, request: Request) -> Response:
        """A page of the checked rows: each with its outcome, the changes, a conflict's
        both names, a rejection's reasons, and a message in the caller's language."""
        async def act() -> Response:
            per_page = query_int(request, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
            return JSONResponse(self._preview(request, self._job(request), per_page))
        return await self._answer(request, act)

    async def api_mapping(self, request: Request) -> Response:
        """Change the mapping (header -> field) and check the sheet again."""
        async def act() -> Response:
            job = self._job(request)
            mapping = _mapping_of(await json_object(request))
            await self._remap(request, job, mapping or {})
            return JSONResponse(job_json(job, language_of(request)),
                                status_code=202 if job.state is JobState.checking else 200)
        return await self._answer(request, act)

    async def api_conflicts(self, request: Request) -> Response:
        """Choose what conflicts do: ``conflicts`` for all, ``conflict_rows`` by row."""
        async def act() -> Response:
            job = self._job(request)
            body = await json_object(request)
            self._changeable(job)
            choose(job, body.get("conflicts"), _rows_of(body))
            return JSONResponse(job_json(job, language_of(request)))
        return await self._answer(request, act)

    async def api_start(self, request: Request) -> Response:
        """Start the import in the background (``existing``: update or skip; optional
        ``mapping``, ``conflicts`` and ``conflict_rows``); progress arrives over the
        WebSocket."""
        async def act() -> Response:
            job = self._job(request)
            body = await json_object(request)
            mapping, existing = _mapping_of(body), _existing(body.get("existing", "update"))
            self._changeable(job)
            choose(job, body.get("conflicts"), _rows_of(body))
            self._start(request, job, existing, mapping)
            return JSONResponse(job_json(job, language_of(request)), status_code=202)
        return await self._answer(request, act)

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
            job = await self._receive(request)
        except Refused as refused:
            message = translate(language_of(request), refused.key, **refused.params)
            return self._upload_page(request, message, refused.status_code)
        return RedirectResponse(f"/customers/import/{job.id}", status_code=303)

    async def page_job(self, request: Request) -> Response:
        async def act() -> Response:
            job = self._job(request)
            context: dict[str, Any] = {
                "job": job, "job_error": job.error_text(language_of(request)),
                "fields": _FIELD_CHOICES, "choices": _CONFLICT_CHOICES,
                "outcomes": [o.value for o in RowOutcome if o is not RowOutcome.SKIP],
                "check": None if job.check is None else check_json(job.check),
                "preview": None}
            if job.state is JobState.checked:
                context["preview"] = self._preview(request, job, PER_PAGE)
            return render(request, "customers/import_job.html", context)
        return await self._answer(request, act)

    async def page_mapping(self, request: Request) -> Response:
        async def act() -> Response:
            job = self._job(request)
            await self._remap(request, job, await self._form_mapping(request, job))
            return RedirectResponse(f"/customers/import/{job.id}", status_code=303)
        return await self._answer(request, act)

    async def page_conflicts(self, request: Request) -> Response:
        async def act() -> Response:
            job = self._job(request)
            form = await request.form()
            self._changeable(job)
            choose(job, form.get("conflicts"), _form_rows(form))
            return RedirectResponse(_back_to(job, form), status_code=303)
        return await self._answer(request, act)

    async def page_start(self, request: Request) -> Response:
        async def act() -> Response:
            job = self._job(request)
            form = await request.form()
            mapping = await self._form_mapping(request, job)
            existing = _existing(form.get("existing", "update"))
            self._changeable(job)
            choose(job, form.get("conflicts"), _form_rows(form))
            self._start(request, job, existing, mapping)
            return RedirectResponse(f"/customers/import/{job.id}", status_code=303)
        return await self._answer(request, act)

    async def page_download(self, request: Request) -> Response:
        return await self._download(request)

    async def _form_mapping(self, request: Request, job: ImportJob) -> dict[str, str]:
        form: FormData = await request.form()
        if job.check is None:
            raise Refused(409, "import.still_checking")
        return mapping_from(form, [h or "" for h in job.check.headers])


def _existing(value: object) -> ExistingCustomers:
    try:
        return ExistingCustomers(str(value))
    except ValueError:
        raise _one_of("existing", tuple(e.value for e in ExistingCustomers)) from None


def _rows_of(body: Mapping[str, Any]) -> dict[str, object]:
    rows = body.get("conflict_rows") or {}
    if not isinstance(rows, dict):
        raise BadInput.of("import.bad_conflict_rows", choices=", ".join(_CONFLICT_CHOICES))
    return rows


def _form_rows(form: FormData) -> dict[str, object]:
    """The page's ``conflict-<row>`` selects."""
    return {key.removeprefix("conflict-"): value for key, value in form.multi_items()
            if key.startswith("conflict-")}


def _back_to(job: ImportJob, form: FormData) -> str:
    """The preview page the form was sent from."""
    page, outcome = form.get("page"), form.get("outcome")
    query = []
    if isinstance(page, str) and page.isascii() and page.isdigit():
        query.append(f"page={page}")
    if isinstance(outcome, str) and outcome in {o.value for o in RowOutcome}:
        query.append(f"outcome={outcome}")
    return f"/customers/import/{job.id}" + ("?" + "&".join(query) if query else "")


_MAPPING_BODY: Final[dict[str, Any]] = {
    "type": "object", "additionalProperties": {"type": "string", "enum": list(_FIELD_CHOICES)}}
_CHOICES_BODY: Final[dict[str, Any]] = {
    "conflicts": {"type": "string", "enum": list(_CONFLICT_CHOICES)},
    "conflict_rows": {"type": "object", "description": "Excel row number -> choice (null: "
                      "as for all conflicts)", "additionalProperties": {
                          "type": ["string", "null"], "enum": [*_CONFLICT_CHOICES, None]}}}
_PREVIEW_PARAMS: Final = {"200": {"description": "A page of the checked rows; ?page=, "
                                                 f"?per_page= (at most {MAX_PER_PAGE}), "
                                                 "?outcome= (new, update, unchanged, "
                                                 "conflict, rejected)"}}


def routes(services: ImportWebServices, jobs: ImportJobs | None = None) -> list[BaseRoute]:
    p = ImportPages(services, jobs)
    job = "{job:str}"
    imports = f"{API}/customer-imports"
    return [
        Route(imports, endpoint(p.api_upload, IMPORT), methods=["POST"]),
        Route(f"{imports}/{job}", endpoint(p.api_get, IMPORT), methods=["GET"]),
        Route(f"{imports}/{job}/preview",
              endpoint(p.api_preview, IMPORT, responses=_PREVIEW_PARAMS), methods=["GET"]),
        Route(f"{imports}/{job}/mapping", endpoint(p.api_mapping, IMPORT, request_body={
            "type": "object", "properties": {"mapping": _MAPPING_BODY}}), methods=["POST"]),
        Route(f"{imports}/{job}/conflicts", endpoint(p.api_conflicts, IMPORT, request_body={
            "type": "object", "properties": _CHOICES_BODY}), methods=["POST"]),
        Route(f"{imports}/{job}/start", endpoint(p.api_start, IMPORT, request_body={
            "type": "object", "properties": {
                "existing": {"type": "string", "enum": ["update", "skip"]},
                "mapping": _MAPPING_BODY, **_CHOICES_BODY}}),
              methods=["POST"]),
        Route(f"{imports}/{job}/errors.xlsx", endpoint(p.api_download, IMPORT),
              methods=["GET"]),
        Route("/customers/import", endpoint(p.page_upload_form, IMPORT), methods=["GET"]),
        Route("/customers/import", endpoint(p.page_upload, IMPORT), methods=["POST"]),
        Route(f"/customers/import/{job}", endpoint(p.page_job, IMPORT), methods=["GET"]),
        Route(f"/customers/import/{job}/mapping", endpoint(p.page_mapping, IMPORT),
              methods=["POST"]),
        Route(f"/customers/import/{job}/conflicts", endpoint(p.page_conflicts, IMPORT),
              methods=["POST"]),
        Route(f"/customers/import/{job}/start", endpoint(p.page_start, IMPORT),
              methods=["POST"]),
        Route(f"/customers/import/{job}/errors.xlsx", endpoint(p.page_download, IMPORT),
              methods=["GET"]),
    ]
