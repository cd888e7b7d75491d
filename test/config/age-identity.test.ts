import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readIdentityText } from '../../src/config/age-identity.ts';

describe('readIdentityText: an age identity given as text (POST /v1/restores body.identity)', () => {
  it('reads a key file as age-keygen writes it and derives the recipient age-keygen -y prints', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'age-identity-test-'));
    try {
      const file = join(dir, 'key.txt');
      await execa('age-keygen', ['-o', file]);
      const recipient = (await execa('age-keygen', ['-y', file])).stdout.trim();
      const text = await readFile(file, 'utf8');
      expect(text).toMatch(/^# created: /);
      expect(readIdentityText(text)).toEqual({ recipients: [recipient] });
      // Two keys, CRLF line ends, surrounding blanks.
      const secret = text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1')) ?? '';
      expect(readIdentityText(`\r\n  ${secret}  \r\n# note\r\n${secret}\r\n`)).toEqual({ recipients: [recipient, recipient] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says why text is not an identity, never quoting it', () => {
    const valid = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
    const cases: [string, string][] = [
      ['', 'holds no age identity (an AGE-SECRET-KEY-1… line, as age-keygen writes)'],
      ['# just a comment', 'holds no age identity (an AGE-SECRET-KEY-1… line, as age-keygen writes)'],
      ['age1qqqq', 'line 1 is not an age identity: each line is an AGE-SECRET-KEY-1… key (as age-keygen writes it), a # comment or blank'],
      ['AGE-SECRET-KEY-1ABC', 'line 1: an AGE-SECRET-KEY-1… key has 58 characters after the prefix'],
      [`# c\n${valid.slice(0, -1)}b`, 'line 2: a character that cannot occur in an age key (Bech32, upper case)'],
      [`AGE-SECRET-KEY-1${'Q'.repeat(58)}`, "line 1: the key's checksum does not match: a character is wrong or missing (copy the key again)"],
    ];
    for (const [text, problem] of cases) {
      const read = readIdentityText(text);
      expect(read, text).toEqual({ problem });
      const line = text.split('\n').at(-1) ?? '';
      if (line.length > 20) expect(problem).not.toContain(line.slice(16, 30));
    }
  });
});
