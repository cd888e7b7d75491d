/**
 * `${VAR}` substitution in every string of the parsed YAML, before validation, so a secret can live
 * in the environment (systemd credentials, Docker secrets, CI variables) instead of the file.
 * `$${` writes a literal `${`. An unset variable is an error naming the YAML path: a backup agent
 * must not run with an empty password because a variable was misspelled.
 */

export interface InterpolationIssue {
  path: (string | number)[];
  message: string;
}

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{([^}]*)\}?/g;

export function interpolate(
  value: unknown,
  env: Record<string, string | undefined>,
  path: (string | number)[] = [],
  issues: InterpolationIssue[] = [],
): { value: unknown; issues: InterpolationIssue[] } {
  if (typeof value === 'string') {
    const replaced = value.replace(reference, (match, name: string | undefined, bad: string | undefined) => {
      if (match === '$${') return '${';
      if (name === undefined) {
        issues.push({ path, message: `invalid variable reference "\${${bad ?? ''}" (expected \${NAME})` });
        return match;
      }
      const found = env[name];
      if (found === undefined) {
        issues.push({ path, message: `environment variable ${name} is not set` });
        return '';
      }
      return found;
    });
    return { value: replaced, issues };
  }
  if (Array.isArray(value)) {
    return { value: value.map((item, i) => interpolate(item, env, [...path, i], issues).value), issues };
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = interpolate(item, env, [...path, key], issues).value;
    }
    return { value: out, issues };
  }
  return { value, issues };
}
