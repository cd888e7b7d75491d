// The encryption: block: recipients checked at load (Bech32, with the YAML path and line), files
// read at load, a database's own block replacing the shared one, the identity kept as a path only.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseRecipientsFile, recipientProblem } from '../../src/config/age-recipient.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/normalize.ts';
import { AgentError } from '../../src/errors.ts';
import { testDir } from '../helpers.ts';

// Made with age-keygen (throwaway keys of this test only).
const R1 = 'age1wp679wqnhntv2lh3kjegsmdp96tl2cvyk4hwgk7eacc4fy2juclsr36lsz';
const IDENTITY = 'AGE-SECRET-KEY-190K69R6E65ZLMWXVX7P5KGFAMRWNLL6TJ32T82YCQLY0JQKAUPDSWAM9VZ';

const parse = (yaml: string): AgentConfig => parseConfig(yaml, 'agent.yaml', {});
const LOCAL = ['storage:', '  type: local', '  path: /var/backups'].join('\n');

function problems(yaml: string): string[] {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return (err as AgentError).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('expected parseConfig to throw');
}

describe('recipientProblem', () => {
  it('accepts a recipient age-keygen made and refuses one with a changed character', () => {
    expect(recipientProblem(R1)).toBeUndefined();
    const typo = `${R1.slice(0, 20)}${R1[20] === 'q' ? 'p' : 'q'}${R1.slice(21)}`;
    expect(recipientProblem(typo)).toMatch(/checksum/);
    expect(recipientProblem(R1.slice(0, -1))).toMatch(/58 characters/);
    expect(recipientProblem(R1.toUpperCase())).toMatch(/lowercase/);
    expect(recipientProblem(IDENTITY)).toMatch(/secret key/);
    expect(recipientProblem(`${R1.slice(0, 10)}b${R1.slice(11)}`)).toMatch(/character "b"/);
  });

  it('reads a recipients file with comments and blank lines, naming a bad line', () => {
    expect(parseRecipientsFile(`# operator\n${R1}\n\n  # offline\n`)).toEqual({ recipients: [R1], problems: [] });
    expect(parseRecipientsFile(`${R1}\nage1nope\n`).problems).toEqual([expect.stringMatching(/^line 2: /)]);
  });
});

describe('parseConfig: encryption', () => {
  it('gives every database the shared block unless it has its own', async () => {
    const dir = await testDir('enc-config');
    const second = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    await writeFile(join(dir, 'recipients.txt'), `# recovery key, kept offline\n${second}\n`);
    const config = parse(
      [
        LOCAL,
        'encryption:',
        `  recipients: [${R1}]`,
        `  recipients_file: ${join(dir, 'recipients.txt')}`,
        'databases:',
        '  - name: a',
        '  - name: b',
        '    encryption:',
        `      recipients: [${second}]`,
      ].join('\n'),
    );
    expect(config.databases[0]?.encryption).toEqual({ recipients: [R1, second], passphrase: undefined, identityFile: undefined });
    expect(config.databases[1]?.encryption).toEqual({ recipients: [second], passphrase: undefined, identityFile: undefined });
  });

  it('leaves a database without any block unencrypted', () => {
    expect(parse(`${LOCAL}\ndatabases:\n  - name: a\n`).databases[0]?.encryption).toBeUndefined();
  });

  it('keeps only the path of the identity file, never its content', async () => {
    const dir = await testDir('enc-identity');
    const path = join(dir, 'key.txt');
    await writeFile(path, `# created: now\n# public key: ${R1}\n${IDENTITY}\n`, { mode: 0o600 });
    const config = parse([LOCAL, 'encryption:', `  recipients: [${R1}]`, `  identity_file: ${path}`, 'databases:', '  - name: a'].join('\n'));
    expect(config.databases[0]?.encryption?.identityFile).toBe(path);
    expect(inspect(config, { depth: 10 })).not.toContain(IDENTITY.slice(16));
    expect(JSON.stringify(config)).not.toContain(IDENTITY.slice(16));
  });

  it('names the YAML path of a bad recipient, a missing file and an identity file without a key', async () => {
    const dir = await testDir('enc-bad');
    await writeFile(join(dir, 'not-a-key.txt'), 'hello\n');
    const lines = problems(
      [
        LOCAL,
        'encryption:',
        `  recipients: [${R1}, age1typo]`,
        `  recipients_file: ${join(dir, 'missing.txt')}`,
        `  identity_file: ${join(dir, 'not-a-key.txt')}`,
        'databases:',
        '  - name: a',
        '    encryption:',
        `      identity_file: ${join(dir, 'absent-key.txt')}`,
        `      recipients: ["${IDENTITY}"]`,
      ].join('\n'),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^line 5: encryption\.recipients\[1\]: must be "age1" followed by 58 characters/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 6: encryption\.recipients_file: cannot read recipients file .*missing\.txt \(ENOENT\)/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 7: encryption\.identity_file: identity file .*not-a-key\.txt holds no age identity/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 11: databases\[0\]\.encryption\.identity_file: cannot read identity file .*absent-key\.txt \(ENOENT\)/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 12: databases\[0\]\.encryption\.recipients\[0\]: this is a secret key/));
    // The secret pasted by mistake is not echoed back.
    expect(lines.join('\n')).not.toContain(IDENTITY.slice(16));
  });

  it('refuses a block without recipients or a passphrase, with the reason', () => {
    const lines = problems([LOCAL, 'encryption:', `  recipients: [${R1}]`, 'databases:', '  - name: a', '    encryption: {}'].join('\n'));
    expect(lines).toEqual([expect.stringMatching(/^line 8: databases\[0\]\.encryption: encryption needs recipients, recipients_file or passphrase_file/)]);
  });
});

describe('parseConfig: passphrase encryption', () => {
  const PASSPHRASE = 'tulip-orbit-quarry-seven-lantern';

  it('keeps the path of the passphrase file and the work factor (default 18, age\'s), never the passphrase', async () => {
    const dir = await testDir('enc-passphrase');
    const path = join(dir, 'passphrase');
    await writeFile(path, `${PASSPHRASE}\n`, { mode: 0o600 });
    const config = parse([LOCAL, 'encryption:', `  passphrase_file: ${path}`, 'databases:', '  - name: a', '  - name: b', '    encryption:', `      passphrase_file: ${path}`, '      scrypt_work_factor: 12'].join('\n'));
    expect(config.databases[0]?.encryption).toEqual({ recipients: [], passphrase: { file: path, workFactor: 18 }, identityFile: undefined });
    expect(config.databases[1]?.encryption?.passphrase).toEqual({ file: path, workFactor: 12 });
    expect(inspect(config, { depth: 10 })).not.toContain(PASSPHRASE);
    expect(JSON.stringify(config)).not.toContain(PASSPHRASE);
  });

  it('refuses a passphrase with recipients (age: scrypt must be the only recipient), naming the YAML path', async () => {
    const dir = await testDir('enc-passphrase-mixed');
    const path = join(dir, 'passphrase');
    await writeFile(path, `${PASSPHRASE}\n`);
    await writeFile(join(dir, 'recipients.txt'), `${R1}\n`);
    const lines = problems(
      [
        LOCAL,
        'encryption:',
        `  recipients: [${R1}]`,
        `  passphrase_file: ${path}`,
        'databases:',
        '  - name: a',
        '    encryption:',
        `      recipients_file: ${join(dir, 'recipients.txt')}`,
        `      passphrase_file: ${path}`,
        '  - name: b',
        '    encryption:',
        `      recipients: [${R1}]`,
        '      scrypt_work_factor: 14',
      ].join('\n'),
    );
    expect(lines).toEqual([
      expect.stringMatching(/^line 6: encryption\.passphrase_file: passphrase_file and recipients: age allows a passphrase \(scrypt\) only as a file's one recipient/),
      expect.stringMatching(/^line 11: databases\[0\]\.encryption\.passphrase_file: passphrase_file and recipients_file: age allows/),
      expect.stringMatching(/^line 15: databases\[1\]\.encryption\.scrypt_work_factor: needs passphrase_file/),
    ]);
  });

  it('refuses an unreadable, empty or multi-line passphrase file and a work factor out of range, without echoing the content', async () => {
    const dir = await testDir('enc-passphrase-bad');
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'two-lines'), `${PASSPHRASE}\nsecond line\n`);
    const lines = problems(
      [
        LOCAL,
        'databases:',
        '  - name: a',
        `    encryption: { passphrase_file: ${join(dir, 'missing')} }`,
        '  - name: b',
        `    encryption: { passphrase_file: ${join(dir, 'empty')}, scrypt_work_factor: 9 }`,
        '  - name: c',
        `    encryption: { passphrase_file: ${join(dir, 'two-lines')}, scrypt_work_factor: 21 }`,
      ].join('\n'),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^line 6: databases\[0\]\.encryption\.passphrase_file: cannot read passphrase file .*missing \(ENOENT\)/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 8: databases\[1\]\.encryption\.passphrase_file: passphrase file .*empty: is empty/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 8: databases\[1\]\.encryption\.scrypt_work_factor: .*10/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 10: databases\[2\]\.encryption\.passphrase_file: passphrase file .*two-lines: holds more than one line/));
    expect(lines).toContainEqual(expect.stringMatching(/^line 10: databases\[2\]\.encryption\.scrypt_work_factor: .*20/));
    expect(lines.join('\n')).not.toContain(PASSPHRASE);
  });
});
