import { describe, expect, it } from 'vitest';
import { fromFlags, parseLocation, storageFromFlags } from '../../src/cli/from-location.ts';
import { AgentError } from '../../src/errors.ts';

function usage(fn: () => unknown): AgentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).kind).toBe('usage');
    return err as AgentError;
  }
  throw new Error('expected a usage error');
}

describe('--from locations', () => {
  it('reads s3://, gs://, file:// and plain paths', () => {
    expect(parseLocation('s3://bkt/backups/prod/')).toEqual({ type: 's3', bucket: 'bkt', prefix: 'backups/prod' });
    expect(parseLocation('s3://bkt')).toEqual({ type: 's3', bucket: 'bkt', prefix: '' });
    expect(parseLocation('gs://b/p')).toEqual({ type: 'gcs', bucket: 'b', prefix: 'p' });
    expect(parseLocation('file:///var/backups')).toEqual({ type: 'local', path: '/var/backups' });
    expect(parseLocation('store', '/srv')).toEqual({ type: 'local', path: '/srv/store' });
    expect(parseLocation('/abs/dir', '/srv')).toEqual({ type: 'local', path: '/abs/dir' });
  });

  it('refuses an unknown scheme, a missing bucket and an empty location, naming --from', () => {
    expect(usage(() => parseLocation('ftp://host/x')).message).toBe('--from ftp://host/x: unknown scheme "ftp://"');
    expect(usage(() => parseLocation('s3:///prefix')).message).toBe('--from s3:///prefix: no bucket name');
    expect(usage(() => parseLocation('  ')).message).toBe('--from: empty location');
    expect(usage(() => parseLocation('file://relative')).message).toContain('absolute path');
  });

  it('makes the storage block the configuration would, path-style when an endpoint is given', () => {
    const s3 = storageFromFlags({ from: 's3://bkt/p', endpoint: 'http://127.0.0.1:4568', options: ['delimiter_listing=false', 'checksum=when_required'] });
    expect(s3).toMatchObject({ type: 's3', bucket: 'bkt', prefix: 'p', endpoint: 'http://127.0.0.1:4568', force_path_style: true, delimiter_listing: false, checksum: 'when_required', region: 'us-east-1' });
    const explicit = storageFromFlags({ from: 's3://bkt', endpoint: 'http://h:1', options: ['force_path_style=false'] });
    expect(explicit).toMatchObject({ force_path_style: false });
    expect(storageFromFlags({ from: 's3://bkt' })).toMatchObject({ force_path_style: false });
    expect(storageFromFlags({ from: 'gs://b/p', credentialsFile: 'key.json' }, '/etc/x')).toMatchObject({ type: 'gcs', credentials_file: '/etc/x/key.json' });
    expect(storageFromFlags({ from: 's3://bkt', profile: 'backup', region: 'eu-west-3' })).toMatchObject({ profile: 'backup', region: 'eu-west-3' });
  });

  it('names the flag that is wrong', () => {
    expect(usage(() => storageFromFlags({ from: 's3://b', endpoint: 'not a url' })).message).toMatch(/^--endpoint: /);
    expect(usage(() => storageFromFlags({ from: 's3://b', options: ['part_size_mb=1'] })).message).toMatch(/^--from-option part_size_mb: /);
    expect(usage(() => storageFromFlags({ from: 's3://b', options: ['bukcet=x'] })).message).toMatch(/^--from: .*bukcet/);
    expect(usage(() => storageFromFlags({ from: 's3://b', options: ['nokey'] })).message).toBe('--from-option nokey: expected KEY=VALUE');
    expect(usage(() => storageFromFlags({ from: 's3://b', options: ['region=x'] })).message).toBe('--from-option region: give it as --region');
    expect(usage(() => storageFromFlags({ from: 's3://b', options: ['checksum=a', 'checksum=b'] })).message).toBe('--from-option checksum: given twice');
    expect(usage(() => storageFromFlags({ from: '/dir', region: 'x' })).message).toBe('--region: not an option of a local directory');
    expect(usage(() => storageFromFlags({ from: 'gs://b', profile: 'x' })).message).toBe('--profile: not an option of gs:// storage');
  });

  it('refuses secrets on the command line and says where they go instead', () => {
    for (const key of ['secret_access_key', 'access_key_id', 'session_token']) {
      const err = usage(() => storageFromFlags({ from: 's3://b', options: [`${key}=hunter2`] }));
      expect(err.message).toBe(`--from-option ${key}: a secret on the command line is visible to every user of the host (ps)`);
      expect(err.message + (err.hint ?? '')).not.toContain('hunter2');
      expect(err.hint).toMatch(/environment|credentials-file/);
    }
  });

  it('sends secret_access_key_file to --credentials-file: its key ID has no place in argv', () => {
    const err = usage(() => storageFromFlags({ from: 's3://b', options: ['secret_access_key_file=/run/secret'] }));
    expect(err.hint).toContain('--credentials-file');
  });

  it('refuses the companion flags without --from', () => {
    expect(fromFlags({})).toBeUndefined();
    expect(usage(() => fromFlags({ endpoint: 'http://x' })).message).toBe('--endpoint needs --from: it describes the storage given there');
    expect(usage(() => fromFlags({ fromOption: ['a=b'] })).message).toBe('--from-option needs --from: it describes the storage given there');
    expect(fromFlags({ from: 's3://b', region: 'r' })).toMatchObject({ from: 's3://b', region: 'r' });
  });
});
