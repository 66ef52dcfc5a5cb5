"""The dialplan as a whole over the API (issue 18): operators read the running
configuration file, replace it, and roll back.

`PUT /plan` takes the whole YAML (the file `wte serve --config` names: settings and plan).
It is checked like `wte plan check` (every issue with its file, line and field) and like
a start (the `switch:` settings must load too); a refused plan answers 422 with the issues
and changes nothing. An accepted one replaces the file atomically (a temporary file, then
a rename), is swapped in like a SIGHUP reload (one reference assignment: calls in flight
keep the plan they started with), and the file it replaced is kept in
`{data_dir}/plan-versions/`. `POST /plan/rollback` applies the newest kept version again
(checked the same way). Settings other than the plan take effect at the next start.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from dialplan import load_plan_data
from dialplan.model import Plan
from dialplan.yamlsource import ConfigError, ConfigIssue, parse_yaml_text
from switch.settings import settings_from_source

from .auth import Principal
from .rest import ApiContext, context, not_found, operator

router = APIRouter(tags=["dialplan"])
VERSIONS = "plan-versions"
KEEP = 20  # versions kept


class IssueOut(BaseModel):
    file: str
    line: int
    field: str
    message: str


class PlanRefusedOut(BaseModel):
    error: str
    issues: list[IssueOut]


class PlanOut(BaseModel):
    generation: int
    customers: int
    users: int
    kept: str | None = None


class VersionOut(BaseModel):
    name: str
    saved_at: float
    size: int


_lock = asyncio.Lock()  # one change of the plan at a time


def _config(ctx: ApiContext) -> Path:
    return Path(ctx.switch.options.config)


def _versions(ctx: ApiContext) -> Path:
    return ctx.data_dir / VERSIONS


def check_plan(text: str, file: str) -> tuple[Plan | None, list[ConfigIssue]]:
    """Validate a whole configuration text as the switch would load it."""
    try:
        source = parse_yaml_text(text, file)
        settings_from_source(source)
        return load_plan_data(source), []
    except ConfigError as exc:
        return None, list(exc.issues)


def _refused(issues: list[ConfigIssue]) -> JSONResponse:
    return JSONResponse({"error": "plan refused: the running plan stays",
                         "issues": [{"file": i.file, "line": i.line, "field": i.field,
                                     "message": i.message} for i in issues]}, status_code=422)


def _keep(ctx: ApiContext, text: str) -> str:
    folder = _versions(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(ctx.clock()))}-{os.getpid()}-" \
           f"{ctx.switch.plan_holder.generation}.yaml"
    (folder / name).write_text(text, encoding="utf-8")
    for old in sorted(folder.glob("*.yaml"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return name


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def _apply(ctx: ApiContext, text: str) -> tuple[PlanOut | None, list[ConfigIssue]]:
    path = _config(ctx)
    plan, issues = await asyncio.to_thread(check_plan, text, str(path))
    if plan is None:
        return None, issues
    kept = _keep(ctx, path.read_text(encoding="utf-8"))
    _write_atomically(path, text)
    ctx.switch.plan_holder.install(plan)
    return PlanOut(generation=ctx.switch.plan_holder.generation,
                   customers=len(plan.customers), users=len(plan.users), kept=kept), []


@router.get("/plan", response_class=PlainTextResponse,
            responses={200: {"content": {"application/yaml": {}}}},
            summary="the running configuration file (YAML)")
async def get_plan(who: Principal = Depends(operator),
                   ctx: ApiContext = Depends(context)) -> PlainTextResponse:
    text = await asyncio.to_thread(_config(ctx).read_text, encoding="utf-8")
    return PlainTextResponse(text, media_type="application/yaml")


@router.put("/plan", response_model=PlanOut,
            responses={422: {"model": PlanRefusedOut, "description": "refused, with issues"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/yaml": {"schema": {"type": "string"}}}}},
            summary="replace the configuration (checked like `wte plan check`, applied "
            "like SIGHUP)")
async def put_plan(request: Request, who: Principal = Depends(operator),
                   ctx: ApiContext = Depends(context)) -> PlanOut | JSONResponse:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "body is not UTF-8") from None
    async with _lock:
        out, issues = await _apply(ctx, text)
    if out is None:
        await ctx.audit(who, request, "plan.refused", "plan",
                        {"issues": [str(i) for i in issues[:20]]})
        return _refused(issues)
    await ctx.audit(who, request, "plan.put", "plan",
                    {"generation": out.generation, "kept": out.kept})
    return out


@router.get("/plan/versions", response_model=list[VersionOut],
            summary="the kept previous versions, newest first")
async def plan_versions(who: Principal = Depends(operator),
                        ctx: ApiContext = Depends(context)) -> list[VersionOut]:
    folder = _versions(ctx)
    files = sorted(folder.glob("*.yaml"), reverse=True) if folder.is_dir() else []
    return [VersionOut(name=f.name, saved_at=f.stat().st_mtime, size=f.stat().st_size)
            for f in files]


@router.post("/plan/rollback", response_model=PlanOut,
             responses={422: {"model": PlanRefusedOut, "description": "refused, with issues"}},
             summary="apply the newest kept version again")
async def rollback(request: Request, who: Principal = Depends(operator),
                   ctx: ApiContext = Depends(context)) -> PlanOut | JSONResponse:
    async with _lock:
        folder = _versions(ctx)
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        if not files:
            raise not_found()
        newest = files[-1]
        out, issues = await _apply(ctx, newest.read_text(encoding="utf-8"))
        if out is None:
            return _refused(issues)
        newest.unlink(missing_ok=True)  # applied: the replaced plan is kept instead
    await ctx.audit(who, request, "plan.rollback", "plan",
                    {"generation": out.generation, "restored": newest.name,
                     "kept": out.kept})
    return out
