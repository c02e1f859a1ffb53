// Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
// (`--remote-debugging-pipe`: JSON messages ended by a NUL byte on file descriptors 3 and 4), so
// the test needs no WebSocket client and no npm package.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts the browser; `close()` ends it and removes its profile. */
export async function launchChromium({ width = 1280, height = 1500 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "triage-chromium-"));
  const child = spawn(
    process.env.CHROMIUM ?? "chromium",
    [
      "--headless",
      // Root (CI) has no user namespace sandbox for Chromium's renderers.
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--hide-scrollbars",
      `--window-size=${width},${height}`,
      `--user-data-dir=${profile}`,
      "--remote-debugging-pipe",
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text) => {
    stderr = (stderr + text).slice(-4000);
  });
  const [toBrowser, fromBrowser] = [child.stdio[3], child.stdio[4]];
  const pending = new Map();
  const listeners = new Set();
  let nextId = 1;
  let buffered = "";
  fromBrowser.setEncoding("utf8").on("data", (text) => {
    buffered += text;
    for (let end = buffered.indexOf("\0"); end >= 0; end = buffered.indexOf("\0")) {
      const message = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      const waiting = pending.get(message.id);
      if (waiting) {
        pending.delete(message.id);
        if (message.error) {
          waiting.reject(new Error(`${waiting.method}: ${message.error.message}`));
        } else {
          waiting.resolve(message.result);
        }
      } else {
        listeners.forEach((listener) => listener(message));
      }
    }
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  exited.then(() => pending.forEach(({ reject }) => reject(new Error(`chromium exited: ${stderr}`))));

  function send(method, params = {}, sessionId = undefined) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      toBrowser.write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    });
  }

  const { product } = await send("Browser.getVersion");
  return {
    product,
    /** A new tab; its uncaught exceptions and console errors are collected in `errors`. */
    async open() {
      const { targetId } = await send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
      const call = (method, params) => send(method, params, sessionId);
      const errors = [];
      listeners.add((message) => {
        if (message.sessionId !== sessionId) {
          return;
        }
        if (message.method === "Runtime.exceptionThrown") {
          errors.push(message.params.exceptionDetails.exception?.description ?? message.params.exceptionDetails.text);
        } else if (message.method === "Runtime.consoleAPICalled" && message.params.type === "error") {
          errors.push(message.params.args.map((arg) => arg.value ?? arg.description).join(" "));
        }
      });
      await call("Runtime.enable");
      await call("Page.enable");
      await call("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
      return {
        call,
        errors,
        /** The value of a page expression (promises awaited); throws what the page throws. */
        async evaluate(expression) {
          const { result, exceptionDetails } = await call("Runtime.evaluate", {
            expression,
            returnByValue: true,
            awaitPromise: true,
          });
          if (exceptionDetails) {
            throw new Error(`${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
          }
          return result.value;
        },
        /** Polls `expression` until it is truthy; fails after `timeoutMs`. */
        async waitFor(expression, timeoutMs = 30000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const value = await this.evaluate(expression);
            if (value) {
              return value;
            }
            if (Date.now() > deadline) {
              throw new Error(`timed out waiting for ${expression}; page errors: ${errors.join("; ")}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        },
        async navigate(url) {
          await call("Page.navigate", { url });
        },
        /** Sets the files of an `<input type=file>` as a user picking them would. */
        async setFiles(selector, files) {
          const { result } = await call("Runtime.evaluate", { expression: `document.querySelector(${JSON.stringify(selector)})` });
          await call("DOM.setFileInputFiles", { files, objectId: result.objectId });
        },
        /** A PNG of the whole page. */
        async screenshot() {
          const { data } = await call("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
          return Buffer.from(data, "base64");
        },
      };
    },
    async close() {
      toBrowser.end();
      child.kill();
      await exited;
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
