import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The agent's version, from package.json (dist/ and src/ both sit one level below it). */
export const AGENT_VERSION: string = (require('../package.json') as { version: string }).version;
