import cliProgress from 'cli-progress';
import { formatBytes } from './format.ts';

/** A byte progress bar on stderr: bytes done, total, rate, ETA. Silent when stderr is not a terminal. */
export interface Progress {
  update(bytes: number): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

export function createProgress(label: string, totalBytes: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silent;
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream,
      hideCursor: true,
      clearOnComplete: false,
      barsize: 30,
      fps: 10,
      format: (options, params, payload: { done: string; total: string; rate: string }) => {
        const size = options.barsize ?? 30;
        const filled = Math.round(params.progress * size);
        const bar = '█'.repeat(filled) + '░'.repeat(size - filled);
        const eta = params.eta > 0 && Number.isFinite(params.eta) ? ` | ETA ${params.eta}s` : '';
        return `${label} ${bar} ${Math.floor(params.progress * 100)}% | ${payload.done} / ${payload.total} | ${payload.rate}${eta}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (bytes: number) => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    return { done: formatBytes(bytes), total: formatBytes(totalBytes), rate: `${formatBytes(Math.round(bytes / seconds))}/s` };
  };
  bar.start(Math.max(totalBytes, 1), 0, payload(0));
  return {
    update: (bytes) => bar.update(bytes, payload(bytes)),
    stop: () => bar.stop(),
  };
}
