import { inspect } from 'node:util';

const REDACTED = '**redacted**';

/**
 * A secret value (password, access key). It prints as `**redacted**` through every path a value
 * can leak by accident: String(), JSON.stringify, util.inspect (console.log, pino).
 * Only `reveal()` gives the value, and only code that hands it to a client or a 0600 file calls it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
