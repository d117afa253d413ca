"""A headless Chromium driven over the DevTools protocol through a pipe (``--remote-debugging-pipe``:
no port, no websocket library), for the tests that load a page of the book from disk and act
on it as a reader would: every request the page makes is recorded, so a test can say that it
made none over the network.

    with Browser() as browser:          # pytest.skip where no Chromium is installed
        page = browser.open(path)        # file://, waits for the load event
        page.evaluate("document.title")
        page.click(x, y)
        page.requests                    # every URL the page requested
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

#: Where the tests look for Chromium (Debian's package: `apt-get install chromium`).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number above 10, close-on-exec (so that the child gets only its copies)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process; its DevTools protocol on fds 3 (commands) and 4 (replies)."""

    def __init__(self, timeout: float = 60.0, width: int = 1280, height: int = 1000):
        exe = find_chromium()
        if exe is None:
            pytest.skip("no Chromium here (Debian: apt-get install chromium); the headless-browser checks are skipped")
        self.timeout = timeout
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="initstudy-chromium-")
        to_r, to_w = map(_high_fd, os.pipe())
        from_r, from_w = map(_high_fd, os.pipe())
        args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps", "--mute-audio",
                # nothing may leave the machine, whatever a page asks: names resolve nowhere
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
                f"--window-size={width},{height}", f"--user-data-dir={self._profile}", "about:blank"]
        actions = [(os.POSIX_SPAWN_DUP2, to_r, 3), (os.POSIX_SPAWN_DUP2, from_w, 4),
                   (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        self.pid = os.posix_spawn(exe, args, dict(os.environ), file_actions=actions, setpgroup=0)
        os.close(to_r)
        os.close(from_w)
        self._out, self._in = to_w, from_r
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    # ------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed its DevTools pipe (did it start?)")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def pump(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                return
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                return
            self._buffer += chunk
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                self.events.append(json.loads(raw))

    # ------------------------------------------------------------------ pages
    def open(self, path: str | os.PathLike) -> "Page":
        """A new tab showing ``path`` (a local file), once its load event has fired."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
        self.send("Network.enable", {}, session)
        self.send("Page.enable", {}, session)
        self.send("Runtime.enable", {}, session)
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session)
        self.wait_event("Page.loadEventFired", session)
        return page

    def close(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)  # its own process group: the browser and its helpers
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                         "awaitPromise": True}, self.session)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]!r}: {result['exceptionDetails'].get('text')} "
                               f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.browser.pump(0.1)
        raise BrowserError(f"timed out waiting for {expression!r}")

    def click(self, x: float, y: float) -> None:
        """A mouse click at viewport coordinates (CSS pixels), as a reader's."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none",
                      "clickCount": 1 if kind != "mouseMoved" else 0}
            self.browser.send("Input.dispatchMouseEvent", params, self.session)

    @property
    def requests(self) -> list[str]:
        """Every URL this page requested so far (the document, scripts, styles, fonts, images, XHR)."""
        self.browser.pump(0.2)
        return [ev["params"]["request"]["url"] for ev in self.browser.events
                if ev.get("method") == "Network.requestWillBeSent" and ev.get("sessionId") == self.session]

    @property
    def failed(self) -> list[str]:
        """Requests that failed (a missing file, a refused address), with the reason."""
        self.browser.pump(0.2)
        ids = {ev["params"]["requestId"]: ev["params"]["request"]["url"] for ev in self.browser.events
               if ev.get("method") == "Network.requestWillBeSent" and ev.get("sessionId") == self.session}
        return [f"{ids.get(ev['params']['requestId'], '?')}: {ev['params'].get('errorText')}"
                for ev in self.browser.events
                if ev.get("method") == "Network.loadingFailed" and ev.get("sessionId") == self.session]


def network_requests(urls: list[str]) -> list[str]:
    """The URLs that would leave the machine: anything but the page's own files and inline data."""
    return [u for u in urls if not u.startswith(("file://", "data:", "blob:", "about:"))]
