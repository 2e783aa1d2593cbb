/**
 * The config state of an agent that loads its configuration once, at start: the
 * file's hash and the start time, never a reload. The live-reload version (issue 8,
 * configuration) replaces this file; both satisfy ConfigSource.
 */
import { createHash } from 'node:crypto';
import type { ConfigSource } from './service.js';
import type { ConfigState } from './types.js';

/** text: the --config file as read at start; null when the agent runs from flags only. */
export function staticConfigSource(text: string | null, loadedAt: Date): ConfigSource {
  const state: ConfigState = {
    policy: null,
    hash: text === null ? null : createHash('sha256').update(text, 'utf8').digest('hex'),
    loadedAt: loadedAt.toISOString(),
    error: null,
    reloads: 0,
    rejected: 0,
  };
  return { state: () => state };
}
