"""The interactive landscape.html in a real browser: headless Chromium (WebGL via SwiftShader) loads a
copy of the page with two scripts injected, a ``window.onerror`` / unhandled-rejection marker at the top
of ``<head>`` and a reporter at the end of ``<body>``, and ``--dump-dom`` gives back the DOM the page
built. The page comes from :func:`gradscape.landscape.plots.surfaces_html` on three surfaces that
the public evaluator computes for a two-parameter bowl with a closed-form range (no training, no
data), so every expected number is known in advance.

Skipped, with the reason, where no Chromium is installed (``.ci/run`` installs Debian's ``chromium``
when it runs as root) or where Chromium cannot create a WebGL context at all.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from gradscape.landscape import Surface, evaluate_surface
from gradscape.landscape.plots import surfaces_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium; .ci/run does this "
    "as root), so landscape.html is not rendered in a browser here",
)

# (label, lowest loss, range): ALIF's range is 1/16 of BRF's, the case a shared colour scale hid.
PANELS = [("BRF", 0.05, 19.5), ("RF", 0.1, 5.0), ("ALIF", 2.3, 1.2)]

ERROR_HOOK = """<script>
(function () {
  function mark(text) {
    var d = document.createElement('div');
    d.className = 'gs-script-error';
    d.textContent = text;
    (document.body || document.documentElement).appendChild(d);
  }
  window.onerror = function (msg, src, line, col) {
    mark('error: ' + msg + ' at ' + src + ':' + line + ':' + col);
  };
  window.addEventListener('unhandledrejection', function (e) {
    mark('unhandled rejection: ' + ((e.reason && e.reason.message) || e.reason));
  });
})();
</script>"""

# Waits until plotly has drawn its colour bars, then writes what it finds as JSON into <pre id=gs-report>.
# The 3-D axis titles are WebGL text (not in the DOM), so they are read from the resolved layout; each
# scene is re-rendered with its own toImage() (gl.readPixels of the WebGL buffer) and the share of
# strongly coloured (viridis, not the grey box or dark text) pixels counted: the surface was drawn, and
# none of them lies in the 3-pixel band along the scene's border: the camera did not crop it.
REPORTER = """<script>
(function () {
  var tries = 0;
  function colourShare(url, done) {
    var img = new Image();
    img.onload = function () {
      var c = document.createElement('canvas');
      c.width = img.width; c.height = img.height;
      var ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      var w = c.width, h = c.height, px = ctx.getImageData(0, 0, w, h).data, n = 0, edge = 0;
      for (var i = 0; i < px.length; i += 4) {
        var mx = Math.max(px[i], px[i + 1], px[i + 2]), mn = Math.min(px[i], px[i + 1], px[i + 2]);
        if (px[i + 3] > 0 && mx - mn > 70) {
          n++;
          var x = (i / 4) % w, y = Math.floor(i / 4 / w);
          if (x < 3 || y < 3 || x >= w - 3 || y >= h - 3) edge++;
        }
      }
      done(n / (w * h), edge);
    };
    img.onerror = function () { done(-1, -1); };
    img.src = url;
  }
  function finish(out) {
    var pre = document.createElement('pre');
    pre.id = 'gs-report';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  function report() {
    var gd = document.querySelector('.plotly-graph-div');
    var bars = document.querySelectorAll('.colorbar');
    var scenes3d = gd && gd._fullLayout ? gd._fullLayout._subplots.gl3d.length : 0;
    if (!(gd && gd._fullLayout && (bars.length || !scenes3d)) && tries++ < 200) {
      setTimeout(report, 100);
      return;
    }
    var probe = document.createElement('canvas');
    var out = {
      webgl: !!(probe.getContext('webgl') || probe.getContext('experimental-webgl')),
      no_webgl_notice: document.querySelectorAll('.no-webgl').length,
      main_svg: document.querySelectorAll('.main-svg').length,
      gl_canvases: document.querySelectorAll('.gl-container canvas').length,
      panel_titles: Array.prototype.map.call(document.querySelectorAll('.annotation-text'),
        function (t) { return t.textContent; }),
      colorbars: Array.prototype.map.call(bars, function (b) {
        return {
          left: b.getBoundingClientRect().left,
          title: Array.prototype.map.call(b.querySelectorAll('.cbtitle text'),
            function (t) { return t.textContent; }).join(' '),
          ticks: Array.prototype.map.call(b.querySelectorAll('.cbaxis text'),
            function (t) { return t.textContent; })
        };
      }),
      scenes: [],
      curves: Array.prototype.map.call(document.querySelectorAll('.legend .traces .legendtext'),
        function (t) { return t.textContent; }),
      x_title: (document.querySelector('.xtitle') || {}).textContent || null,
      y_title: (document.querySelector('.ytitle') || {}).textContent || null
    };
    if (gd && gd._fullLayout) {  // the plot area in page pixels, where the paper fractions live
      var fl = gd._fullLayout;
      out.plot_left = gd.getBoundingClientRect().left + fl.margin.l;
      out.plot_width = fl.width - fl.margin.l - fl.margin.r;
    }
    var names = (gd && gd._fullLayout && gd._fullLayout._subplots.gl3d) || [];
    var pending = names.length;
    if (!pending) { finish(out); return; }
    names.forEach(function (name, k) {
      var sc = gd._fullLayout[name];
      out.scenes[k] = {
        name: name, domain: sc.domain.x,
        x_title: sc.xaxis.title.text, y_title: sc.yaxis.title.text, z_title: sc.zaxis.title.text,
        x_range: sc.xaxis.range, y_range: sc.yaxis.range, z_range: sc.zaxis.range
      };
      var url = null;
      try { url = sc._scene.toImage('png'); } catch (e) { out.scenes[k].image_error = String(e); }
      if (!url) { out.scenes[k].coloured = -1; if (--pending === 0) finish(out); return; }
      colourShare(url, function (share, edge) {
        out.scenes[k].coloured = share;
        out.scenes[k].coloured_on_edge = edge;
        if (--pending === 0) finish(out);
      });
    });
  }
  setTimeout(report, 100);
})();
</script>"""


class Bowl(nn.Module):
    """θ = w ∈ R², θ* = 0; with d = (1, 0), e = (0, 1) the page gets f(α, β) = low + span (α² + β²)/2."""

    def __init__(self, low: float, span: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        self.low, self.span = low, span

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w + 0 * x.sum()

    def loss(self, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = self.low + self.span * (w**2).sum() / 2
        # one diverged point, (α, β) = (−1, 0) on an edge: masking is exercised, min and max unchanged
        return torch.where((w[0] == -1) & (w[1] == 0), torch.full_like(f, math.inf), f)


def synthetic(label: str, low: float, span: float, dims: int = 2) -> Surface:
    """The public evaluator on :class:`Bowl`: minimum ``low`` at θ*, maximum low + span at the corners
    (in 1-D: f(α) = low + span α²/2), recorded as a label-last NLL like ``gradscape landscape`` does."""
    model = Bowl(low, span)
    axes = [
        {"w": torch.tensor([1.0, 0.0], dtype=torch.float64)},
        {"w": torch.tensor([0.0, 1.0], dtype=torch.float64)},
    ]
    return evaluate_surface(
        model,
        model.loss,
        axes[:dims],
        "-1:1:9",
        data=(torch.zeros(1), torch.zeros(1)),
        config={
            "task": "smnist",
            "split": "test",
            "samples": 16,
            "seed": 0,
            "objective": {"mode": "last", "sub_seq_length": 0, "reduction": "mean"},
        },
        meta={"label": label},
        progress=False,
    )


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))  # plotly writes minus signs as U+2212


def render_in_chromium(html: str) -> tuple[list[str], dict | None]:
    """(script errors, the reporter's JSON or None) of ``html`` with the two probes injected (~5 s)."""
    assert html.count("<head>") == 1 and html.count("</body>") == 1
    probe = html.replace("<head>", "<head>" + ERROR_HOOK, 1).replace("</body>", REPORTER + "</body>", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "landscape.html"
        path.write_text(probe, encoding="utf-8")
        cmd = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any CDN fetch would fail
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--window-size=1500,800",
            "--virtual-time-budget=20000",
            "--dump-dom",
            path.as_uri(),
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"chromium exited {run.returncode}: {run.stderr[-2000:]}"
    dom = run.stdout
    errors = [
        html_lib.unescape(e) for e in re.findall(r'<div class="gs-script-error">(.*?)</div>', dom, re.S)
    ]
    found = re.search(r'<pre id="gs-report">(.*?)</pre>', dom, flags=re.S)
    report = json.loads(html_lib.unescape(found.group(1))) if found else None
    if report is not None and not report["webgl"]:
        pytest.skip("this Chromium cannot create a WebGL context (no SwiftShader), so 3-D plots cannot draw")
    return errors, report


@pytest.fixture(scope="module")
def rendered() -> tuple[list[str], dict | None]:
    """The three-panel page, rendered once for the tests below."""
    return render_in_chromium(surfaces_html([synthetic(*p) for p in PANELS]))


@pytest.fixture
def page(rendered: tuple[list[str], dict | None]) -> dict:
    """The reporter's JSON (the page drew its colour bars in time)."""
    assert rendered[1] is not None, "the reporter never ran: plotly drew no colour bar within the time budget"
    return rendered[1]


def test_page_runs_without_script_errors(rendered: tuple[list[str], dict | None]) -> None:
    errors, report = rendered
    assert not errors, f"script errors in landscape.html: {errors}"
    assert report is not None


def test_page_is_self_contained() -> None:
    """plotly.js is inlined: no script, stylesheet or MathJax is fetched from a network."""
    html = surfaces_html([synthetic(*PANELS[0])])
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "mathjax" not in html.lower().split("<script", 1)[0]
    assert len(html) > 1_000_000  # plotly.js itself (several MB) is in the file


def test_every_panel_draws_its_surface_without_script_errors(page: dict) -> None:
    r = page
    n = len(PANELS)
    assert r["no_webgl_notice"] == 0
    assert r["main_svg"] >= 1
    assert r["gl_canvases"] >= 1
    assert len(r["scenes"]) == n
    for sc in r["scenes"]:
        # at least 3 % of each scene's rendered pixels are viridis colours (an empty box has none)
        assert sc["coloured"] > 0.03, sc


def test_the_camera_shows_each_whole_surface(page: dict) -> None:
    """No surface pixel touches its scene's border (a cropped surface runs off the edge)."""
    r = page
    for sc in r["scenes"]:
        assert sc["coloured"] > 0.03, sc
        assert sc["coloured_on_edge"] == 0, sc


def test_every_panel_has_its_own_colour_bar_on_its_own_range(page: dict) -> None:
    r = page
    bars = sorted(r["colorbars"], key=lambda b: b["left"])
    assert len(bars) == len(PANELS)
    scenes = sorted(r["scenes"], key=lambda s: s["domain"][0])
    for i, ((label, low, span), bar) in enumerate(zip(PANELS, bars, strict=True)):
        assert bar["title"] == "loss: label-last NLL (nats)"
        ticks = [_number(t) for t in bar["ticks"]]
        assert len(ticks) >= 3, bar
        # own scale: every tick inside [low, low + span] and together covering at least half of it
        # (a scale shared with BRF's 19.5 would put ALIF's 1.2 between two ticks)
        assert min(ticks) >= low - 1e-9 and max(ticks) <= low + span + 1e-9, (label, ticks)
        assert max(ticks) - min(ticks) >= 0.5 * span, (label, ticks)
        # beside its own panel: right of its scene and left of the next one (paper fractions)
        left = (bar["left"] - r["plot_left"]) / r["plot_width"]
        assert left >= scenes[i]["domain"][1] - 0.01
        if i + 1 < len(scenes):
            assert left < scenes[i + 1]["domain"][0]


def test_axes_are_titled_and_enclose_the_whole_surface(page: dict) -> None:
    r = page
    scenes = sorted(r["scenes"], key=lambda s: s["domain"][0])
    for (_, low, span), sc in zip(PANELS, scenes, strict=True):
        assert sc["x_title"].startswith("α")
        assert sc["y_title"].startswith("β")
        assert sc["z_title"] == "loss (nats)"
        assert sc["x_range"][0] <= -1 and sc["x_range"][1] >= 1
        assert sc["y_range"][0] <= -1 and sc["y_range"][1] >= 1
        assert sc["z_range"][0] <= low and sc["z_range"][1] >= low + span


def test_panel_titles_name_the_model_and_its_loss_range(page: dict) -> None:
    r = page
    titles = r["panel_titles"]
    assert len(titles) == len(PANELS)
    for (label, low, span), title in zip(PANELS, titles, strict=True):
        assert title.startswith(label)
        # lowest, highest and range read back as numbers and compared with the closed form; the page
        # prints them to 4, 4 and 3 significant digits, hence the relative tolerances
        got = re.search(r"loss ([0-9.]+) … ([0-9.]+) \(range ([0-9.]+)\)", title)
        assert got, title
        lo, hi, rng = (float(g) for g in got.groups())
        assert abs(lo - low) <= 5e-4 * low, title
        assert abs(hi - (low + span)) <= 5e-4 * (low + span), title
        assert abs(rng - span) <= 5e-3 * span, title
        assert "1 diverged" in title


def test_a_one_dimensional_page_draws_its_titled_curves() -> None:
    """1-D results: one f(α) line per model on SVG axes titled α and the metric."""
    curves = [synthetic(label, low, span, dims=1) for label, low, span in PANELS]
    errors, r = render_in_chromium(surfaces_html(curves))
    assert not errors, f"script errors in the 1-D landscape.html: {errors}"
    assert r is not None and r["main_svg"] >= 1 and not r["scenes"]
    assert r["curves"] == [label for label, *_ in PANELS]
    assert r["x_title"].startswith("α") and r["y_title"] == "loss: label-last NLL (nats)"
