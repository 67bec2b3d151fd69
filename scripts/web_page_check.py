#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol to check the kiosk's staff page.

    web_page_check.py URL OUT_PNG [--phone OUT_PHONE_PNG] [--timeout S]

Opens URL (the page, with #token=... when the server wants one), waits until the page
shows three decisions (at least one pushed over the event stream), the live screen image and a healthy "running" camera, then
saves a desktop screenshot (and a phone-sized one). Prints one JSON object with what the
page showed; exits 1 if it never showed a decision. Needs `chromium` and python3-websocket
(Debian packages; scripts/setup.sh installs both).
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket (websocket-client)

PROBE = r"""
(() => {
  const items = [...document.querySelectorAll('#decisions li.decision')];
  const img = document.getElementById('screen');
  const now = document.querySelector('#now .genre');
  const health = {};
  const dts = document.querySelectorAll('#health dt');
  dts.forEach(dt => { health[dt.textContent] = dt.nextElementSibling.textContent; });
  return JSON.stringify({
    decisions: items.length,
    first: items.length ? items[0].innerText.split('\n')[0] : null,
    shown_now: now ? now.textContent : null,
    pa_badges: document.querySelectorAll('.pa').length,
    bars: document.querySelectorAll('.bar').length,
    screen_width: img && img.complete ? img.naturalWidth : 0,
    connection: document.getElementById('conn').textContent,
    streamed: Number(document.body.dataset.streamed || 0),
    health,
  });
})()
"""


MIN_DECISIONS = 3


def ok(seen):
    """Decisions shown, some pushed over the event stream, the screen, live."""
    return (seen.get("decisions", 0) >= MIN_DECISIONS and seen.get("streamed", 0) > 0
            and seen.get("screen_width", 0) > 0 and seen.get("connection") == "live")


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("web_page_check: chromium not found (scripts/setup.sh installs it)")


class Tab:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def screenshot(self, path, width, height, mobile):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)
        time.sleep(1.5)  # one more screen refresh and layout at the new size
        data = self.call("Page.captureScreenshot", format="png")["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out_png")
    ap.add_argument("--phone")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    profile = tempfile.mkdtemp(prefix="sleeve-chromium-")
    proc = subprocess.Popen(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 30
        while port is None and time.time() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            sys.exit("web_page_check: chromium did not open its DevTools port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        tab = Tab(pages[0]["webSocketDebuggerUrl"])
        tab.call("Page.enable")
        tab.call("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                 deviceScaleFactor=1, mobile=False)
        t0 = time.time()
        tab.call("Page.navigate", url=a.url)
        seen = {}
        while time.time() - t0 < a.timeout:
            seen = json.loads(tab.evaluate(PROBE) or "{}")
            if ok(seen):
                break
            time.sleep(0.25)
        seen["seconds_waited"] = round(time.time() - t0, 2)
        tab.screenshot(a.out_png, 1200, 900, False)
        if a.phone:
            tab.screenshot(a.phone, 390, 844, True)
        print(json.dumps(seen, indent=2))
        if not ok(seen):
            print("web_page_check: FAILED: the page did not show a decision, one over the "
                  "event stream, the screen and a live connection", file=sys.stderr)
            return 1
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
