import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { projectRoot } from '../../src/config';

export interface ChildServer {
  readonly process: ChildProcess;
  readonly url: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export const CLI = join(projectRoot(), 'dist', 'src', 'cli', 'main.js');

/**
 * Starts `node dist/src/cli/main.js serve` in its own process group on a free port and waits for the URL
 * it prints. Killing the group leaves no orphan behind.
 */
export function startChildServer(env: Record<string, string>, timeoutMs = 60_000): Promise<ChildServer> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH ?? '', PORT: '0', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid!, signal);
    } catch {
      return;
    }
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = () => {
      const match = /serving (http:\/\/\S+\/graphql)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ process: child, url: match[1], output: () => output, kill });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before serving:\n${output}`));
    });
  });
}

/**
 * How long a CLI command (or a shell line running some) may take before it is killed: one that never ends
 * (a `serve` that should have refused to start, say) fails its test instead of holding the run open. Under
 * jest's test timeout (60 s), so that the process is gone when its test fails.
 */
const CHILD_DEADLINE_MS = 55_000;

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return completed(spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Runs a bash command line (a pipeline: its status is the first failing command's) and returns its exit code and output. */
export function runShell(command: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return completed(spawn('bash', ['-o', 'pipefail', '-c', command], { env: { PATH: process.env.PATH ?? '', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * The child's exit code and all of its output ('close': 'exit' may come before the pipes are read to their
 * end). Past the deadline its process group (it runs in its own) is killed, and the output says so.
 */
function completed(child: ChildProcessByStdio<null, Readable, Readable>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const deadline = setTimeout(() => {
      stderr += `\n[killed by the test: still running after ${CHILD_DEADLINE_MS / 1000} s]\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }, CHILD_DEADLINE_MS);
    child.once('close', (code) => {
      clearTimeout(deadline);
      resolve({ code, stdout, stderr });
    });
  });
}
