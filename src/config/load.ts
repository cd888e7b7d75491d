import { readFileSync } from 'node:fs';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import { AgentError } from '../errors.ts';
import { interpolate } from './interpolate.ts';
import { normalizeConfig, type AgentConfig, type ConfigIssue } from './normalize.ts';
import { configSchema } from './schema.ts';

export const DEFAULT_CONFIG_PATH = '/etc/backup-agent/agent.yaml';

/** `--config PATH`, else `AGENT_CONFIG`, else /etc/backup-agent/agent.yaml. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? (env['AGENT_CONFIG'] || DEFAULT_CONFIG_PATH);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** The line of the deepest node of `path` that exists in the document (a missing key points at its parent). */
function lineOf(doc: Document, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

function configError(source: string, lines: string[]): AgentError {
  return new AgentError('config', `invalid configuration ${source}:\n${lines.map((l) => `  ${l}`).join('\n')}`, {
    hint: 'fix the lines above; `agent config validate` checks a file without running anything',
  });
}

/**
 * The yaml package's limit on how far aliases may expand, set here so the limit is ours: a few
 * nested aliases (a "billion laughs" file) would otherwise take all memory.
 */
const MAX_ALIAS_COUNT = 100;

/** The document as plain data; an alias bomb is a configuration error, not a crash. */
function toPlain(doc: Document, source: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // The yaml package throws a ReferenceError for an alias that expands too far.
    if (!(err instanceof ReferenceError)) throw err;
    throw configError(source, ['aliases expand too far (a resource exhaustion attack?): write the values out instead']);
  }
}

/**
 * The configuration of an agent run without a file: defaults only, no database entry. Commands
 * that read another archive (`--from`) work with it, e.g. after losing the host and its config.
 */
export function defaultConfig(): AgentConfig {
  const parsed = configSchema.omit({ databases: true }).parse({});
  return normalizeConfig({ ...parsed, databases: [] }).config;
}

/** Parses and validates configuration text. Throws an AgentError of kind `config` listing every problem. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv): AgentConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw configError(
      source,
      doc.errors.map((e) => `line ${counter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`),
    );
  }
  const describe = (issue: ConfigIssue | { path: readonly PropertyKey[]; message: string; at?: readonly PropertyKey[] }): string => {
    const line = lineOf(doc, counter, ('at' in issue && issue.at) || issue.path);
    return `${line === undefined ? '' : `line ${line}: `}${formatPath(issue.path)}: ${issue.message}`;
  };

  const interpolated = interpolate(toPlain(doc, source), env);
  if (interpolated.issues.length > 0) throw configError(source, interpolated.issues.map(describe));

  const parsed = configSchema.safeParse(interpolated.value);
  if (!parsed.success) {
    throw configError(
      source,
      parsed.error.issues.map((issue) =>
        describe({
          path: issue.path,
          message: issueMessage(issue),
          // An unknown key is reported on its parent's path but located at the key's own line.
          ...(issue.code === 'unrecognized_keys' ? { at: [...issue.path, issue.keys[0] ?? ''] } : {}),
        }),
      ),
    );
  }
  const { config, issues } = normalizeConfig(parsed.data);
  if (issues.length > 0) throw configError(source, issues.map(describe));
  return config;
}

function issueMessage(issue: { code: string; message: string; keys?: string[]; expected?: unknown }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  // zod does not keep the input in issues; its message says when there was none.
  if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
    return `missing (expected ${String(issue.expected)})`;
  }
  return issue.message;
}

export function loadConfig(path: string, env: NodeJS.ProcessEnv): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AgentError('config', `read configuration ${path}: ${code}`, {
      hint: 'pass --config PATH or set AGENT_CONFIG; config.example.yaml is an annotated starting point',
      cause: err,
    });
  }
  return parseConfig(text, path, env);
}
