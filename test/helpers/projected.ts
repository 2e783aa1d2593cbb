/**
 * A downwardAPI volume as the kubelet writes it (its AtomicWriter): each version
 * of the files in a new `..TIMESTAMP` directory, a `..data_tmp` symlink to it
 * renamed over `..data` (the atomic step), and each file a symlink through
 * `..data`; the previous version's directory is removed after the swap.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class ProjectedVolume {
  private version = 0;
  private current: string | null = null;

  /** `file` is the one file projected (the annotation's path in the volume). */
  constructor(
    readonly dir: string,
    readonly file = 'config.yaml',
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  }

  /** The path the agent is given (--config). */
  get path(): string {
    return join(this.dir, this.file);
  }

  /** Publish a new version of the file, as the kubelet does when the annotation changes. */
  write(text: string): void {
    const stamp = `..${new Date().toISOString().replace(/[-:T]/g, '_').replace(/\..*$/, '')}.${++this.version}`;
    mkdirSync(join(this.dir, stamp), { mode: 0o755 });
    writeFileSync(join(this.dir, stamp, this.file), text, { mode: 0o644 });
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.current === null) symlinkSync(join('..data', this.file), this.path);
    else rmSync(join(this.dir, this.current), { recursive: true, force: true });
    this.current = stamp;
  }
}
