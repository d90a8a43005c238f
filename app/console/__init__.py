"""The office console (`/console`): server-rendered pages for office staff.

Interface for page modules (e.g. pages_map.py, pages_stats.py, pages_duty.py):

- Routes: define them on `router` (`from app.console.router import router`; prefix
  "/console", hidden from OpenAPI). Name the module `app/console/pages_*.py`:
  `app.console.mount.install_console(app)` imports every such module before including the
  router, so nothing else needs registering. `install_console` is called by
  `app.web.create_app` after the API is installed.
- Who: `from app.console.auth import StaffDep, StaffContext, require_role, CsrfDep`.
  `ctx: StaffDep` is the signed-in staff member (a redirect, 303, to
  /console/login?next=… without a session). `ctx.staff` (id, username, role,
  office_code), `ctx.office` (app.directory.offices.Office), `ctx.csrf_token`,
  `ctx.lang` ("zh"/"en"), `ctx.can("supervisor")`, `ctx.require("admin")`
  (403), `ctx.actor` (the app.context.Actor for case services).
  `Depends(require_role("supervisor"))` gives the same context or 403.
  Every POST handler takes `ctx: CsrfDep` instead: it checks the form's
  `csrf_token` field and the Origin/Referer (403 with a reason).
- Visibility: only through app.directory.offices (`case_filter(ctx.office)`,
  `region_filter(session, ctx.office)`, `visible_case`); anything outside the
  office's area is a 404, like the API.
- Database: `session: SessionDep` from app.deps (the request's one commit).
- Pages: `render(request, ctx, "map.html", nav_active="map", **values)` from
  app.console.render. Templates extend "base.html" and fill
  `{% block title %}` and `{% block content %}` (`{% block head %}` for extra
  <link>s, `{% block scripts %}` for <script src>s). All text through
  `{{ _("English msgid") }}` in templates, `_ = translator(ctx.lang)` in
  Python; add every msgid with its Chinese to
  app/console/locale/zh_CN/LC_MESSAGES/messages.po (a test fails on any
  msgid without one; `make messages` re-extracts). Filters: `localtime`
  (the configured zone), `mask` (masks phones in any text).
- Static files: app/console/static, served at /console/static/…; no CDN, no
  web fonts, no inline <script> (the CSP refuses it), no http(s) URLs to other
  hosts (a test walks the pages).
- Errors: raise app.errors domain errors (NotFound, Forbidden, …); under
  /console they render as an HTML page with the reason and their status.

May import app services, app.directory.offices, models; nothing outside this package
imports it except app.web and app.cli.staff.
"""
