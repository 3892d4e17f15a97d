import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "./deploy-files.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

/** The packages with their names, as the lockfile holds them. */
function lockPackages(): { name: string; dev: boolean }[] {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([path]) => path.includes("node_modules/"))
    .map(([path, p]) => ({
      name: path.slice(path.lastIndexOf("node_modules/") + 13),
      dev: p.dev === true,
    }));
}

/** The instructions of the Dockerfile's last stage. */
function finalStage(): string {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  return text.slice(text.lastIndexOf("\nFROM "));
}

describe("the production build", () => {
  it("compiles, and the compiled gateway starts and answers /healthz", {
    timeout: 240_000,
  }, async () => {
    // Inside the checkout, so node finds node_modules and package.json's "type": "module".
    const out = join(ROOT, ".tmp", `build-${process.pid}`);
    let proc: ChildProcess | undefined;
    try {
      await run(process.execPath, [
        join(ROOT, "node_modules/typescript/bin/tsc"),
        "-p",
        join(ROOT, "tsconfig.build.json"),
        "--outDir",
        out,
      ]);
      await run(process.execPath, [join(ROOT, "shared/build/copy-assets.mjs"), out]);
      const help = await run(process.execPath, [join(out, "services/main.js"), "--help"]);
      expect(help.stdout).toMatch(/^Usage: tidings/);

      const gateway = spawn(process.execPath, [join(out, "services/main.js")], {
        cwd: ROOT,
        env: {
          ...process.env,
          PORT: "0",
          HOST: "127.0.0.1",
          TIDINGS_APPS: undefined,
          TIDINGS_ROLE: undefined,
          // The console and the demo (development app) read their pages beside their modules.
          TIDINGS_CONSOLE_SECRET: "build-test-console-secret",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      proc = gateway;
      let log = "";
      gateway.stdout?.on("data", (c: Buffer) => {
        log += c.toString();
      });
      gateway.stderr?.on("data", (c: Buffer) => {
        log += c.toString();
      });
      const listening = /Tidings listening on 127\.0\.0\.1:([0-9]+)/;
      await waitFor(() => listening.test(log) || gateway.exitCode !== null, {
        timeoutMs: 30_000,
        what: "the compiled gateway to listen",
      });
      const port = listening.exec(log)?.[1];
      expect(port, log).toBeDefined();
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
      for (const page of ["/demo", "/demo/chat.js", "/console"]) {
        expect((await fetch(`http://127.0.0.1:${port}${page}`)).status, page).toBe(200);
      }
    } finally {
      if (proc && proc.exitCode === null) {
        const exited = once(proc, "exit");
        proc.kill("SIGKILL");
        await exited;
      }
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("installs no compiler into the image: typescript, tsx and esbuild are dev-only", () => {
    const compilers = lockPackages().filter((p) =>
      /^(typescript|tsx|esbuild|@esbuild\/.*)$/.test(p.name),
    );
    expect(compilers.map((p) => p.name)).toContain("tsx");
    expect(compilers.filter((p) => !p.dev)).toEqual([]);
  });

  it("runs dist/ with plain node in the image's final stage, which holds no sources", () => {
    const stage = finalStage();
    expect(stage).toMatch(
      /CMD \["node", "--max-semi-space-size=2", "--enable-source-maps", "dist\/services\/main\.js"\]/,
    );
    expect(stage).toMatch(/COPY --from=deps [^\n]*node_modules/);
    expect(stage).not.toMatch(/npm (ci|install)/);
    expect(stage).not.toMatch(/COPY [^\n]*(services|shared\/src|tsconfig)/);
    expect(readFileSync(join(ROOT, "Dockerfile"), "utf8")).toMatch(/npm ci --omit=dev/);
  });
});
