#!/usr/bin/env -S node --max-semi-space-size=1 --expose-gc
/*
 * The `agent` executable. It checks the Node.js version before anything else is loaded: ESM
 * evaluates a module's static imports before its body, and the dependencies need Node 24 (under
 * Node 20 execa fails while loading, with a stack trace). So this file imports nothing statically,
 * uses only syntax old Node parses, and loads the agent by dynamic import once the check passed.
 *
 * The shebang's --max-semi-space-size=1: the agent streams, so its live data is a few buffers in
 * flight, but V8's default young generation (16 MiB semi-spaces) fills with short-lived chunk
 * wrappers between scavenges and keeps that memory resident. 1 MiB keeps a backup's peak RSS
 * ~50 MiB lower at no cost in speed (npm run bench runs the agent with the shebang's flags).
 * --expose-gc: the binlog capture asks for a major GC after each archived segment, whose buffers
 * V8 would otherwise keep until external memory has grown by ~64 MiB (binlog/capture.ts), and a
 * backup stream asks for a scavenge every 4 MiB and a full GC every 64 MiB for the same reason
 * (pipeline/release-chunks.ts).
 */

/** The major version package.json's engines.node asks for. */
const NODE_MAJOR = 24;

if (Number(process.versions.node.split('.')[0]) < NODE_MAJOR) {
  process.stderr.write(`error: backup-agent needs Node.js ${NODE_MAJOR} or newer; this is Node.js ${process.versions.node}\n`);
  process.exitCode = 2;
} else {
  // V8's code cache for the agent's and its dependencies' modules (in the OS temp dir; Node falls
  // back to compiling when it cannot write there): `agent list` starts ~25% faster.
  const { enableCompileCache } = await import('node:module');
  enableCompileCache();
  const { watchOutput, finishOutput } = await import('./ui/output.ts');
  watchOutput();
  const { main } = await import('./cli/program.ts');
  // The only process.exit of a normal run, after stdout and stderr are flushed.
  process.exit(await finishOutput(await main(process.argv)));
}
