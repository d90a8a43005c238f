"""Helpers of the browser suite: the running server, the network guard, axe, screenshots.

The suite drives Debian's Chromium (never a downloaded browser) against a real
`gridline serve` process on a loopback port, with a demo city in an SQLite file
that the tests also read directly to check what the pages show.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from playwright.sync_api import Page, Route
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.console.render import translator
from app.db import make_engine
from app.importer.demo_city import GRIDS as DEMO_GRIDS
from app.models.cases import Case, CaseParticipant
from app.models.messages import InboundMessage
from tests.helpers import wait_for

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
AXE_JS = VENDOR / "axe.min.js"
SCREENSHOTS = HERE / "screenshots"

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine with no network beyond loopback: without the
# background-networking flags Chromium keeps dialling Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

VIEWPORTS = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
LOCALES = {"zh": "zh-CN", "en": "en-US"}

# One gazetteer address of each demo grid (app/importer/demo_city.py): a text naming it is
# routed to that grid.
ADDRESS_OF = {
    "DH-JF-WS-01": "翁山新村1幢",
    "DH-JF-WS-02": "翁山新村5幢",
    "DH-JF-XD-01": "人民路10号",
    "DH-JF-XD-02": "西大街8号",
    "DH-GL-XMT-01": "西码头村大岙",
    "DH-GL-XMT-02": "西码头村小岙",
    "DH-GL-XJ-01": "新建村樟州",
    "DH-GL-XJ-02": "新建村黄沙岙",
}

AUTH_TOKEN = "browser-suite-auth-token-0123456789"
STAFF_PASSWORD = "Correct-Horse-7-Battery"


def gridline_command() -> list[str]:
    """The installed `gridline` script of this interpreter's venv, else `python -m app.cli.main`."""
    script = Path(sys.executable).with_name("gridline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus any Gridline/Twilio setting of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDLINE_", "TWILIO_"))}
    env.update(extra)
    return env


def run_cli(args: list[str], *, env: dict[str, str], cwd: Path) -> str:
    """Run a `gridline` command; fail the test session with its output if it fails."""
    done = subprocess.run(
        [*gridline_command(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"gridline {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


@dataclass
class Staff:
    username: str
    office: str
    role: str
    password: str = STAFF_PASSWORD


@dataclass
class OpenedCase:
    id: int
    code: str
    grid: str
    phone: str
    text: str


@dataclass
class Server:
    """A `gridline serve` process on a loopback port, and its SQLite database."""

    base_url: str
    db_path: Path
    engine: Engine
    staff: dict[str, Staff]
    _phones: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc

    def url(self, path: str) -> str:
        return self.base_url + path

    def session(self) -> Session:
        return Session(self.engine)

    def new_phone(self) -> str:
        """A phone that no resident of the demo city has (each case its own sender)."""
        return f"1376600{next(self._phones):04d}"

    def send_sms(self, phone: str, body: str) -> int:
        """Post a signed Twilio webhook; wait until the worker has processed it."""
        sid = "SMbrowser" + uuid.uuid4().hex
        params = {"MessageSid": sid, "From": phone, "To": "+8657000000000", "Body": body}
        url = f"{self.base_url}/sms/inbound"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        response = httpx.post(
            url,
            content=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text

        def processed() -> InboundMessage | None:
            with self.session() as s:
                row = s.scalar(select(InboundMessage).where(InboundMessage.message_sid == sid))
                return row if row is not None and row.status != "received" else None

        row = wait_for(processed, what=f"the worker to process {sid}")
        assert isinstance(row, InboundMessage)
        assert row.status == "processed", row.error
        return row.id

    def open_case(self, grid: str, text: str = "楼道灯坏了，请帮忙修一下") -> OpenedCase:
        """A new case in `grid`: a new sender texting an address of that grid."""
        phone = self.new_phone()
        address = ADDRESS_OF[grid]
        self.send_sms(phone, f"{address} {text}")
        with self.session() as s:
            case = s.scalar(
                select(Case).where(Case.resident_phone == "+86" + phone).order_by(Case.id.desc())
            )
            assert case is not None, f"no case opened for {phone}"
            assert case.grid is not None and case.grid.code == grid, (
                case.grid.code if case.grid else None,
                case.routing_evidence,
            )
            return OpenedCase(id=case.id, code=case.code, grid=grid, phone=phone, text=text)

    def team_phone(self, case: OpenedCase) -> str:
        """A phone the case was forwarded to (who may answer it by SMS)."""
        with self.session() as s:
            phone = s.scalar(
                select(CaseParticipant.phone)
                .where(CaseParticipant.case_id == case.id)
                .order_by(CaseParticipant.id)
            )
        assert phone is not None, f"case #{case.code} was forwarded to nobody"
        return phone

    def team_replies(self, case: OpenedCase, text: str) -> None:
        """A team member answers the case by SMS (`4821 收到`, `4821 办结 …`)."""
        self.send_sms(self.team_phone(case), f"{case.code} {text}")

    def case(self, case_id: int) -> Case:
        with self.session() as s:
            case = s.get(Case, case_id)
            assert case is not None
            s.expunge_all()
            return case


def write_grid_shapes(path: Path) -> None:
    """A square boundary per demo grid, side by side near Dinghai (lon 122.1, lat 30.0)."""
    features = []
    for i, code in enumerate(DEMO_GRIDS):
        x, y = 122.10 + 0.01 * (i % 4), 30.02 - 0.01 * (i // 4)
        ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def start_server(workdir: Path, staff: list[Staff]) -> tuple[subprocess.Popen[str], Server]:
    """Migrate, load the demo city, create the staff, and serve on a free loopback port."""
    from tests.pg import _free_port

    db_path = workdir / "console.db"
    db_url = f"sqlite:///{db_path}"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = clean_env(
        GRIDLINE_DATABASE_URL=db_url,
        GRIDLINE_SMS_PROVIDER="console",
        GRIDLINE_VALIDATE_SIGNATURES="true",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        GRIDLINE_PUBLIC_URL=base_url,
        GRIDLINE_HOTLINE_NUMBER="+8657000000000",
        GRIDLINE_LOCALE="zh",
        GRIDLINE_WORKER_POLL_SECONDS="0.2",
    )
    if db_path.exists():
        # A kept workdir (`--console-workdir`): set up by an earlier run; serve it again.
        return _serve(workdir, env, db_url, base_url, port, staff)
    run_cli(["db", "upgrade"], env=env, cwd=workdir)
    run_cli(["demo", "--no-serve"], env=env, cwd=workdir)
    # The small demo city has no boundaries; the map needs some to draw.
    shapes = workdir / "shapes"
    shapes.mkdir()
    write_grid_shapes(shapes / "grids.geojson")
    # These write different tables: run them side by side (each CLI start costs seconds).
    jobs: list[tuple[list[str], dict[str, str]]] = [(["import", str(shapes)], env)]
    jobs += [
        (
            ["staff", "create", "--office", m.office, "--role", m.role, "--username", m.username],
            {**env, "GRIDLINE_STAFF_PASSWORD": m.password},
        )
        for m in staff
    ]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(run_cli, args, env=e, cwd=workdir) for args, e in jobs]:
            future.result()
    return _serve(workdir, env, db_url, base_url, port, staff)


def _serve(
    workdir: Path,
    env: dict[str, str],
    db_url: str,
    base_url: str,
    port: int,
    staff: list[Staff],
) -> tuple[subprocess.Popen[str], Server]:
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen(
        [*gridline_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()  # the child has its own copy

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gridline serve exited:\n{(workdir / 'serve.log').read_text()}")
        try:
            return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=120, what="gridline serve to answer /readyz")
    except BaseException:
        stop_server(proc)
        raise
    engine = make_engine(db_url)
    with Session(engine) as s:
        # Senders of earlier runs on a kept database must not be reused.
        first_phone = int(s.scalar(select(func.count(Case.id))) or 0) + 1
    server = Server(
        base_url=base_url,
        db_path=workdir / "console.db",
        engine=engine,
        staff={m.username: m for m in staff},
        _phones=itertools.count(first_phone),
    )
    return proc, server


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class NetworkGuard:
    """Aborts, and remembers, every request that leaves the local server.

    A console page must work on an office's closed network: no CDN fonts or
    scripts, no analytics, no map tiles from elsewhere.
    """

    allowed_netloc: str
    blocked: list[str] = field(default_factory=list)

    def __call__(self, route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == self.allowed_netloc:
            route.continue_()
            return
        self.blocked.append(route.request.url)
        route.abort("blockedbyclient")


def text(lang: str, msgid: str) -> str:
    """What the console shows for `msgid` in `lang` (its own catalogue), to find it by."""
    return translator(lang)(msgid)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot for people to look at (the folder is gitignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    size = page.viewport_size or {"width": 0, "height": 0}
    path = SCREENSHOTS / f"{slug(name)}-{size['width']}x{size['height']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SERIOUS = ("serious", "critical")


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, object]]:
    """Run axe-core (vendored) on the page; its serious and critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Not `page.add_script_tag(path=...)`: that adds an inline <script>, which
        # the console's Content-Security-Policy (script-src 'self') refuses, and
        # `bypass_csp` would hide the pages' own CSP mistakes. Evaluating the
        # source through the DevTools protocol is not subject to the page's CSP.
        page.evaluate(_axe_source())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html,
                                          summary: n.failureSummary})),
            }));
        }"""
    )
    return [v for v in result if v["impact"] in SERIOUS]


def format_violations(violations: list[dict[str, object]]) -> str:
    lines: list[str] = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        nodes = v["nodes"]
        assert isinstance(nodes, list)
        for node in nodes[:8]:
            lines.append(f"    at {json.dumps(node['target'], ensure_ascii=False)}")
            lines.append(f"       {str(node['html'])[:160]}")
            for summary_line in str(node["summary"] or "").splitlines():
                lines.append(f"       {summary_line}")
        if len(nodes) > 8:
            lines.append(f"    … and {len(nodes) - 8} more")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """Fail on any serious or critical axe-core violation, printed readably."""
    violations = axe_violations(page)
    assert not violations, f"axe-core on {page.url}:\n" + format_violations(violations)


def no_horizontal_scroll(page: Page) -> tuple[int, int]:
    """(scrollWidth of the document, innerWidth): the page must not scroll sideways."""
    width, inner = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    return int(width), int(inner)


_WIDE_ELEMENTS = """() => {
    const clipped = (el) => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) {
                return true;
            }
        }
        return false;
    };
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > innerWidth + 0.5 && !clipped(el)
            && !out.some((o) => o.contains(el))) {
            out.push(el);
        }
    }
    return out.slice(0, 5).map((el) => el.tagName.toLowerCase()
        + (el.id ? '#' + el.id : '')
        + (typeof el.className === 'string' && el.className.trim()
            ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
        + ` (right edge ${Math.round(el.getBoundingClientRect().right)}px)`);
}"""


def wide_elements(page: Page) -> list[str]:
    """The outermost elements that stick out to the right of the viewport (for messages)."""
    return list(page.evaluate(_WIDE_ELEMENTS))
