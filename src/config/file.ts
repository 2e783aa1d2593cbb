/**
 * Reading the config file: the only file system access of src/config. Bounded and
 * careful, since the file is re-read for the agent's whole life (reload.ts) and in
 * a pod it is a pod annotation anyone who may edit the pod can write.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ConfigError } from './validate.js';

/**
 * Largest config file read: 256 KiB, the API server's limit for all annotations of
 * one object together, so any file the operator can write through the downward API
 * fits. A bigger file is refused, never read in part.
 */
export const CONFIG_FILE_MAX_BYTES = 256 * 1024;

/**
 * The file's text. Follows symlinks (path is opened anew each time, so the kubelet's
 * swap of `..data` is seen). O_NONBLOCK: a FIFO put at the path cannot hang the
 * agent in open(); anything but a regular file is refused.
 */
export function readConfigFile(path: string, max = CONFIG_FILE_MAX_BYTES): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`config file ${path} is not a regular file`);
    if (st.size > max) throw new ConfigError(`config file ${path} is ${st.size} bytes, more than the ${max} read`);
    // One byte more than allowed is read: a file that grew after fstat is still caught.
    let buf = Buffer.allocUnsafe(Math.min(max, st.size) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > max) throw new ConfigError(`config file ${path} is more than the ${max} bytes read`);
        const bigger = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw new ConfigError(`config file ${path} is not UTF-8 text`);
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ECONFIG') throw e;
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
