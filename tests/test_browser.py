"""A real browser test of the notebook widgets: JupyterLab on 127.0.0.1, driven in the system's headless Chromium.

Every notebook in ``notebooks/`` that uses ``neurodepth_lib.viz.widgets`` is found by scanning the notebooks (a
chapter that adds a widget is tested without touching this file; ``test_every_widget_is_in_a_notebook`` fails when
a public widget is called by no notebook, or a chapter loses its demo). One JupyterLab server serves them all: it
starts on a free port of 127.0.0.1 with a random token, its root a temporary folder holding copies of the
notebooks, its kernels at quick scale (``NEURODEPTH_SCALE=quick``, matplotlib's inline backend). Then, per
notebook, the test

1. opens the notebook in headless Chromium (Playwright drives the system's ``/usr/bin/chromium``: no browser
   download) and runs every cell above its last widget cell, then that cell (the widget needs nothing below it,
   and nbval runs the whole notebook anyway);
2. in each widget cell, waits for the controls and the widget's figure, changes a dropdown and moves a slider
   with the keyboard (or ticks a check box when it has neither), presses the widget's button if it has one
   (widgets with a cheap redraw update on every change), and waits until the kernel is idle and the figure has
   settled: the widget's figure must have changed and must still be one figure (an update replaces its figure,
   never appends one), and the cell's other figures must be as they were;
3. asserts that the browser logged no console error and raised no page error, and shuts the notebook's kernel.

Screenshots (each widget cell before and after its update, and the JupyterLab window at the end) go to the test's
temporary folder, or to ``$NEURODEPTH_WIDGET_SHOTS`` when set; the folder is printed at the end (``pytest -s``).
Requests to anywhere but the local server never leave the browser: images (the Colab and Binder badges of a
notebook's first cell) get a blank stand-in, anything else is refused.

Run it alone: ``.venv/bin/python -m pytest -m browser tests/test_browser.py -p no:cacheprovider -s``. It skips,
and says why, only when Chromium (``/usr/bin/chromium``, or ``$NEURODEPTH_CHROMIUM``) or Playwright is missing;
``.ci/run`` installs Chromium from the distribution's packages. Most of its time is the notebooks' own quick-scale
cells above their widgets.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
WIDGETS_MODULE = REPO / "neurodepth_lib" / "viz" / "widgets.py"
CHROMIUM = Path(os.environ.get("NEURODEPTH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SERVER_START_S = 120   # generous waits for a loaded 2-core machine: they bound a wait, they assert no speed
CELLS_RUN_S = 420
WIDGET_UPDATE_S = 180
BLANK_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


# ---------------------------------------------------------------------------------------- which notebooks

def _widget_functions() -> list[str]:
    """The public widget functions, read from the module's ``__all__`` (no import: that would load NEURON)."""
    for node in ast.parse(WIDGETS_MODULE.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return [name for name in ast.literal_eval(node.value) if name != "widgets_available"]
    raise AssertionError(f"{WIDGETS_MODULE} has no __all__")


USES_WIDGETS = re.compile(r"\bviz\.widgets\b|\bfrom\s+neurodepth_lib\.viz\s+import\s+[^\n]*\bwidgets\b")


def widget_cells(path: Path) -> list[int]:
    """Indices (among all cells) of the code cells that call a widget, if the notebook uses the widgets."""
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(c["source"]) if c["cell_type"] == "code" else "" for c in cells]
    if not any(USES_WIDGETS.search(s) for s in sources):
        return []
    call = re.compile(r"\b(?:" + "|".join(map(re.escape, _widget_functions())) + r")\s*\(")
    return [i for i, s in enumerate(sources) if call.search(s)]


WIDGET_NOTEBOOKS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if widget_cells(p))


# the chapters with an interactive demo (issue 22): a chapter that loses its demo fails here, not silently
CHAPTERS_WITH_DEMOS = {"01_integrate_and_fire", "02_a_detailed_l5_pyramidal_cell", "03_generating_a_dataset",
                       "05_evaluating_the_fit", "06_how_deep_is_a_neuron", "07_what_the_network_learned"}


def test_every_widget_is_in_a_notebook():
    assert CHAPTERS_WITH_DEMOS <= {Path(n).stem for n in WIDGET_NOTEBOOKS}, WIDGET_NOTEBOOKS
    sources = "\n".join("".join(c["source"]) for n in WIDGET_NOTEBOOKS
                        for c in json.loads((NOTEBOOKS / n).read_text())["cells"] if c["cell_type"] == "code")
    unused = [f for f in _widget_functions() if not re.search(rf"\b{f}\s*\(", sources)]
    assert not unused, f"widgets no notebook calls, so the browser test never drives them: {unused}"


def test_the_scan_finds_the_widget_cells(tmp_path):
    assert "02_a_detailed_l5_pyramidal_cell.ipynb" in WIDGET_NOTEBOOKS, WIDGET_NOTEBOOKS
    code = lambda source: {"cell_type": "code", "source": source, "metadata": {}, "outputs": []}
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [
        code("from neurodepth_lib.viz.widgets import l5pc_rate_explorer"), {"cell_type": "markdown", "source": ""},
        code("x = 1"), code("l5pc_rate_explorer(cell)"), code("nd.viz.widgets.l5pc_rate_explorer(\n  cell)")]}))
    assert widget_cells(nb) == [3, 4]
    nb.write_text(json.dumps({"cells": [code("l5pc_rate_explorer = print\nl5pc_rate_explorer(1)")]}))
    assert widget_cells(nb) == []  # a notebook that never imports the widgets has none


# ---------------------------------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, token: str, method: str = "GET", timeout: float = 10) -> int:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status


class Lab:
    """A JupyterLab server of this environment, rooted in ``root``; :meth:`stop` ends it and its kernels."""

    def __init__(self, root: Path, work: Path):
        self.root, self.token = root, secrets.token_hex(24)
        config, settings = work / "jupyter-config", work / "lab-user-settings"
        config.mkdir()
        # nothing fetched from the internet: no news, no update check, no extension manager listing PyPI
        (config / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
            "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly"}}))
        for plugin, values in {
            # every cell in the DOM (no virtual scrolling), so cell i of the file is DOM cell i
            "notebook-extension/tracker": {"windowingMode": "none"},
            "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        }.items():
            path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ, NEURODEPTH_SCALE="quick", JUPYTER_CONFIG_DIR=str(config),
                   JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
                   NEURODEPTH_RECEIPT_DIR=str(work / "receipts"),  # not the session's: nbval's receipts live there
                   NEURODEPTH_WORK=str(work / "notebook-work"))
        env.pop("MPLBACKEND", None)  # conftest.py sets Agg for nbval; these kernels must draw inline figures
        env.pop("NEURODEPTH_NO_WIDGETS", None)
        self.log_path = work / "jupyterlab.log"
        self._log = open(self.log_path, "w")
        for _ in range(3):  # a free port can be taken between the probe and the server's bind
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
                 f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                 f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={work / 'lab-workspaces'}",
                 "--LabApp.expose_app_in_browser=True"],
                env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=root)
            if self._wait_until_up():
                return
            self._end_server()
        self._log.close()
        pytest.fail(f"JupyterLab did not start; its log:\n{self.log_tail()}")

    def _wait_until_up(self) -> bool:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if _request(f"{self.url}/api/status", self.token, timeout=5) == 200:
                    return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        return False

    def log_tail(self, n: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def _end_server(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            _request(f"{self.url}/api/shutdown", self.token, method="POST")
        except (urllib.error.URLError, OSError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Shut the server down through its API (it stops its kernels), then make sure no process is left."""
        import psutil

        try:
            started = psutil.Process(self.proc.pid).children(recursive=True)  # kernels and their children
        except psutil.NoSuchProcess:
            started = []
        self._end_server()
        _, alive = psutil.wait_procs(started, timeout=30)
        for p in alive:  # a kernel the server failed to stop: ours, so end it
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=30)
        self._log.close()


# ---------------------------------------------------------------------------------------- the page

# Read from JupyterLab's own model of the open notebook (the app is exposed with --LabApp.expose_app_in_browser):
# per code cell, its execution count and the errors among its outputs.
_NOTEBOOK_JS = """(path) => {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (!w.context || w.context.path !== path) continue;
    return w;
  }
  return null;
}"""

_CELL_STATES_JS = """(path) => {
  const panel = (FIND_PANEL)(path);
  if (!panel || !panel.context.isReady) return null;
  const cells = panel.content.model.cells, states = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    states.push(c.type !== 'code' ? null : {
      count: c.executionCount,
      errors: c.outputs.toJSON().filter(o => o.output_type === 'error')
               .map(o => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'))});
  }
  return {kernel: panel.sessionContext.session?.kernel?.status ?? null, cells: states};
}""".replace("FIND_PANEL", _NOTEBOOK_JS)

_RUN_UP_TO_JS = """([path, index]) => {
  const panel = (FIND_PANEL)(path);
  window.jupyterapp.shell.activateById(panel.id);
  panel.content.activeCellIndex = index;
  panel.content.mode = 'command';
  const commands = window.jupyterapp.commands;
  // not awaited: the test watches the cells; the kernel runs the two requests in order
  commands.execute('notebook:run-all-above').then(() => commands.execute('notebook:run-cell'));
}""".replace("FIND_PANEL", _NOTEBOOK_JS)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip(text: str) -> str:
    return _ANSI.sub("", text)


def _wait(condition, timeout_s: float, what: str, poll_s: float = 0.5):
    """Poll ``condition()`` until it returns something true; fail with ``what`` (a string or a callable) after
    ``timeout_s``. A generous bound on a wait, never a measurement."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout_s:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(poll_s)


# The outputs of one cell, top level only (an Output widget nests its own output area): per output, whether it
# holds a widget view and the sources of its images (a figure is an <img> of a PNG data URI).
_OUTPUTS_JS = """(el) => {
  const top = el.classList.contains('jp-OutputArea') ? el : el.querySelector('.jp-OutputArea');
  if (!top) return [];
  return Array.from(top.children).filter(c => c.classList.contains('jp-OutputArea-child')).map(c => ({
    widget: !!c.querySelector('.jupyter-widgets'),
    imgs: Array.from(c.querySelectorAll('img')).map(i => i.getAttribute('src') || '')}));
}"""


def _outputs(output_area) -> list[dict]:
    return output_area.evaluate(_OUTPUTS_JS)


def _figures(outputs: list[dict]) -> dict:
    """The cell's images: ``widget`` those of the output just before the first widget view (the widget's figure,
    displayed before its controls), ``others`` every other image of the cell, in order."""
    first = next((i for i, o in enumerate(outputs) if o["widget"]), None)
    mine = next((i for i in range(first - 1, -1, -1) if outputs[i]["imgs"]), None) if first else None
    return {"widget": outputs[mine]["imgs"] if mine is not None else [],
            "others": [src for i, o in enumerate(outputs) if i != mine for src in o["imgs"]]}


def _kernel_idle(page, notebook: str) -> bool:
    state = page.evaluate(_CELL_STATES_JS, notebook)
    return bool(state) and state["kernel"] == "idle"


def _settled(page, notebook: str, outputs, polls: int = 3, poll_s: float = 0.7):
    """Wait until the kernel is idle and the cell's images have not changed for ``polls`` polls in a row (the
    redraws that the changed controls asked for have all arrived); return the images."""
    last, same = None, 0
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while time.monotonic() < deadline:
        now = _figures(_outputs(outputs))
        same = same + 1 if now == last and _kernel_idle(page, notebook) else 0
        if same >= polls:
            return now
        last = now
        time.sleep(poll_s)
    pytest.fail(f"{notebook}: the widget's figure did not settle within {WIDGET_UPDATE_S} s")


def _exercise_widget(page, notebook: str, cell, shots: Path, name: str, index: int) -> dict:
    """Change the controls of the widget in ``cell`` (and press its button, if any); return what happened."""
    outputs = cell.locator(".jp-Cell-outputArea")
    outputs.locator(".jupyter-widgets").first.wait_for(state="visible", timeout=CELLS_RUN_S * 1000)
    _wait(lambda: _figures(_outputs(outputs))["widget"], 60, f"the widget's figure in cell {index}")
    button = outputs.locator("button.widget-button")
    if button.count():
        _wait(lambda: button.first.is_enabled(), 60, f"the widget button of cell {index}")
    before = _settled(page, notebook, outputs)
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=str(shots / f"{name}-cell{index}-before.png"))

    changed = []
    dropdowns = outputs.locator(".widget-dropdown select")
    if dropdowns.count():
        select = dropdowns.first
        current = select.input_value()
        options = [o for o in select.locator("option").evaluate_all("els => els.map(e => e.value)") if o != current]
        if options:
            select.select_option(options[-1])
            changed.append(f"dropdown {current} -> {options[-1]}")
    sliders = outputs.locator(".widget-slider")
    if sliders.count():
        slider = sliders.first
        readout = slider.locator(".widget-readout")
        start = readout.inner_text()
        handle = slider.locator(".noUi-handle")
        handle.focus()
        for _ in range(3):
            handle.press("ArrowRight")  # noUiSlider's keyboard step, as a user would nudge it
        _wait(lambda: readout.inner_text() != start, 30, f"the slider of cell {index} to move (readout {start})")
        changed.append(f"slider {start} -> {readout.inner_text()}")
    if not changed:
        boxes = outputs.locator(".widget-checkbox input[type=checkbox]")
        if boxes.count():
            boxes.last.click()
            changed.append("a check box")
    assert changed, f"cell {index}: a widget without a dropdown, slider or check box; teach this test its controls"

    if button.count():
        button.first.click()
    _wait(lambda: _figures(_outputs(outputs))["widget"] != before["widget"], WIDGET_UPDATE_S,
          lambda: f"the figure of cell {index} to change after {', '.join(changed)}"
                  + (" and a click" if button.count() else ""))
    after = _settled(page, notebook, outputs)
    if button.count():
        _wait(lambda: button.first.is_enabled(), WIDGET_UPDATE_S, f"cell {index}'s button to come back after the run")
    cell.screenshot(path=str(shots / f"{name}-cell{index}-after.png"))
    text = _strip(outputs.inner_text())
    assert "Traceback (most recent call last)" not in text and "Error displaying widget" not in text, text[-3000:]
    return {"before": before, "after": after, "changed": changed}


# ---------------------------------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the system's package (apt-get install chromium; "
                    "`.ci/run` does) or point NEURODEPTH_CHROMIUM at one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the `test` extra)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """One JupyterLab server for every widget notebook (each notebook gets its own kernel, shut after its test)."""
    root, work = tmp_path_factory.mktemp("notebooks"), tmp_path_factory.mktemp("lab")
    for notebook in WIDGET_NOTEBOOKS:
        shutil.copy(NOTEBOOKS / notebook, root / notebook)
    server = Lab(root, work)
    try:
        yield server
    finally:
        server.stop()


def _shut_kernels(lab: Lab) -> None:
    """Delete every session of the server (its kernel goes with it), so the next notebook has the cores."""
    try:
        req = urllib.request.Request(f"{lab.url}/api/sessions", headers={"Authorization": f"token {lab.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            sessions = json.loads(resp.read())
        for session in sessions:
            _request(f"{lab.url}/api/sessions/{session['id']}", lab.token, method="DELETE", timeout=60)
    except (urllib.error.URLError, OSError):
        pass  # the server's stop at the end of the module ends whatever is left


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS)
def test_widgets_render_and_respond_in_jupyterlab(notebook, browser, lab, tmp_path):
    shots = Path(os.environ.get("NEURODEPTH_WIDGET_SHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    cells = widget_cells(NOTEBOOKS / notebook)
    n_cells = len(json.loads((NOTEBOOKS / notebook).read_text())["cells"])
    name = Path(notebook).stem
    t0 = time.monotonic()

    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_shut_kernels, lab)
        # a fresh profile per context: Playwright's contexts are incognito-like, nothing persists between tests
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        cleanup.callback(context.close)
        errors, stubbed = [], []
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text} ({m.location})")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

        def outside(route):  # the machine may be offline, and a test must not depend on the internet
            stubbed.append(route.request.url)
            if route.request.resource_type == "image":
                route.fulfill(status=200, content_type="image/svg+xml", body=BLANK_SVG)
            else:
                route.abort()

        context.route(re.compile(rf"^(?!http://127\.0\.0\.1:{lab.port}/)(https?|wss?)://"), outside)

        def screenshot_at_failure():
            if not (shots / f"{name}-page.png").exists():
                with contextlib.suppress(Exception):  # a screenshot must never hide the real failure
                    page.screenshot(path=str(shots / f"{name}-page-at-failure.png"), full_page=True)

        cleanup.callback(screenshot_at_failure)

        # a workspace of its own: the server is shared, and the default workspace would reopen the last notebook
        page.goto(f"{lab.url}/lab/workspaces/{name}/tree/{notebook}?token={lab.token}",
                  timeout=SERVER_START_S * 1000)
        page.wait_for_function(f"() => window.jupyterapp && (({_NOTEBOOK_JS})({json.dumps(notebook)})"
                               "?.sessionContext.session?.kernel?.status === 'idle')",
                               timeout=SERVER_START_S * 1000, polling=500)
        panel_id = page.evaluate(f"() => (({_NOTEBOOK_JS})({json.dumps(notebook)})).id")
        dom_cells = page.locator(f"[id='{panel_id}'] .jp-Notebook .jp-Cell")
        assert dom_cells.count() == n_cells, "the DOM does not show every cell (windowing mode?)"

        page.evaluate(_RUN_UP_TO_JS, [notebook, cells[-1]])

        def ran():
            state = page.evaluate(_CELL_STATES_JS, notebook)
            failed = [e for c in (state or {}).get("cells", []) if c for e in c["errors"]]
            if failed:
                pytest.fail(f"{notebook}: a cell failed in JupyterLab:\n{_strip(failed[0])[-4000:]}")
            done = state and all(state["cells"][i] and state["cells"][i]["count"] for i in cells)
            return done and state["kernel"] == "idle"

        _wait(ran, CELLS_RUN_S, lambda: f"{notebook} to run up to cell {cells[-1]} (server log:\n{lab.log_tail()})")
        ran_s = time.monotonic() - t0

        results = {i: _exercise_widget(page, notebook, dom_cells.nth(i), shots, name, i) for i in cells}
        page.screenshot(path=str(shots / f"{name}-page.png"), full_page=True)
        for i, r in results.items():  # every widget draws one figure, and an update replaces it (widgets.py)
            n_before, n_after = len(r["before"]["widget"]), len(r["after"]["widget"])
            assert (n_before, n_after) == (1, 1), (f"cell {i}: {n_before} figure(s) before the update, {n_after} "
                                                   "after: a widget shows one figure, and an update replaces it")
            assert r["after"]["widget"] != r["before"]["widget"], f"cell {i}: the figure did not change"
            assert r["after"]["others"] == r["before"]["others"], (
                f"cell {i}: the cell's other figures changed in number or content "
                f"({len(r['before']['others'])} -> {len(r['after']['others'])}): an update must only replace its own")
        assert not errors, "the browser logged errors:\n" + "\n".join(errors)
        print(f"\n{notebook}: widget cells {cells}, {[r['changed'] for r in results.values()]}; cells ran in "
              f"{ran_s:.0f} s, test {time.monotonic() - t0:.0f} s; screenshots in {shots}; "
              f"requests kept from the internet: {sorted(set(stubbed)) or 'none'}")
