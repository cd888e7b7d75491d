'use strict';
// Child entry: the Cloud Storage emulator of firebase-tools (pinned 15.34.2) without Java.
// Usage: node gcs-emulator-main.cjs <port> [projectId]
// Serves the GCS JSON API on 127.0.0.1:<port>. Stops on SIGTERM/SIGINT.
// Keep TMPDIR private per run: blobs are persisted under `${os.tmpdir()}/firebase/storage/blobs`
// and deleted on stop.
//
// firebase-tools internals relied on (re-check when upgrading; the probe test covers them):
//  - lib/emulator/storage          StorageEmulator({ projectId, host, port }) and start()/stop()
//  - StorageEmulator#_rulesRuntime  replaced by a no-op stub (the real one spawns a Java JAR)
//  - StorageEmulator#_rulesManager  replaced by a no-op stub (loads rules through that runtime);
//                                   the GCS JSON API uses the admin layer, which never asks rules
//  - lib/emulator/registry         EmulatorRegistry.set('storage', emulator): object metadata
//                                   builds selfLink/mediaLink from EmulatorRegistry.url('storage')
const { StorageEmulator } = require('firebase-tools/lib/emulator/storage');
const { EmulatorRegistry } = require('firebase-tools/lib/emulator/registry');

const port = Number(process.argv[2]);
const projectId = process.argv[3] || 'test';
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: gcs-emulator-main.cjs <port> [projectId]');
  process.exit(2);
}

const emulator = new StorageEmulator({ projectId, host: '127.0.0.1', port });
emulator._rulesRuntime = { start: async () => {}, stop: async () => {} };
emulator._rulesManager = { start: async () => {}, stop: async () => {}, getRuleset: () => undefined };
EmulatorRegistry.set('storage', emulator);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  try {
    await emulator.stop();
  } catch (err) {
    console.error('storage emulator stop failed:', err);
  }
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

emulator.start().then(
  () => {
    // A listen error (EADDRINUSE) is an unhandled 'error' event of the server: the process dies
    // with the error in its log, which startGcsServer() detects.
    console.log(`storage emulator listening on http://127.0.0.1:${port}`);
  },
  (err) => {
    console.error('storage emulator failed to start:', err);
    process.exit(1);
  },
);
