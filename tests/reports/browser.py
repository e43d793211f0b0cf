"""Headless Chromium for the dashboard tests: load a page from disk, report what it rendered.

A probe page loads the target in an iframe (``--allow-file-access-from-files`` makes the two
file:// pages one origin) and writes the target's title, text, images (``naturalWidth``) and
link targets into its own DOM, which ``--dump-dom`` prints once the page has loaded.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
         "--virtual-time-budget=10000"]

PROBE = """<!DOCTYPE html><html><body><pre id="out">probe: the page did not load</pre>
<iframe id="f" src="%s"></iframe>
<script>
document.getElementById("f").addEventListener("load", () => {
  const d = document.getElementById("f").contentDocument;
  const imgs = [...d.images].map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth}));
  const links = [...d.querySelectorAll("a[href]")].map(a => a.href);
  document.getElementById("out").textContent = JSON.stringify({title: d.title, text: d.body.innerText, imgs, links});
});
</script></body></html>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(page: Path, scratch: Path) -> dict:
    """What Chromium rendered of ``page``: {title, text, imgs[{src, complete, width}], links[]}."""
    scratch.mkdir(parents=True, exist_ok=True)
    probe = scratch / "probe.html"
    probe.write_text(PROBE % page.resolve().as_uri(), encoding="utf-8")
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={scratch / 'profile'}", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"chromium printed no probe output (exit {proc.returncode}): {proc.stderr[-2000:]}"
    text = html.unescape(match.group(1))
    assert text.startswith("{"), f"the dashboard did not load in chromium: {text}"
    return json.loads(text)


def screenshot(page: Path, png: Path, scratch: Path, size: str = "1280,2200") -> None:
    subprocess.run([chromium(), *FLAGS, f"--user-data-dir={scratch / 'profile-shot'}", f"--window-size={size}",
                    f"--screenshot={png}", page.resolve().as_uri()], capture_output=True, timeout=120, check=True)
