/**
 * Native or classic sidecar, from the API server's version (GET /version). The rule
 * is the chart's (templates/_sidecar.tpl: semverCompare ">=1.29.0-0"): native sidecars
 * (an init container with restartPolicy: Always, KEP-753) are on by default from 1.29;
 * before that the API server drops restartPolicy from an init container and the pod
 * would hang in Init. Classic works on every version, so an unknown version is classic.
 * Pure.
 */

export type SidecarMode = 'native' | 'classic';
export const NATIVE_SIDECAR_MIN = { major: 1, minor: 29 } as const;

export interface KubeVersion {
  major: number;
  minor: number;
}

/**
 * /version's major/minor (strings, minor maybe "29+" on managed clusters) or its
 * gitVersion ("v1.29.3-gke.1"); null when neither reads as a version.
 */
export function parseKubeVersion(v: { major?: unknown; minor?: unknown; gitVersion?: unknown }): KubeVersion | null {
  const num = (x: unknown): number | null => (typeof x === 'string' && /^[0-9]+\+?$/.test(x) ? parseInt(x, 10) : null);
  const major = num(v.major);
  const minor = num(v.minor);
  if (major !== null && minor !== null) return { major, minor };
  const m = typeof v.gitVersion === 'string' ? /^v?([0-9]+)\.([0-9]+)/.exec(v.gitVersion) : null;
  return m ? { major: parseInt(m[1]!, 10), minor: parseInt(m[2]!, 10) } : null;
}

export function atLeast(v: KubeVersion | null, min: KubeVersion): boolean {
  if (v === null) return false;
  return v.major > min.major || (v.major === min.major && v.minor >= min.minor);
}

/** auto: native from 1.29 on, classic before and when the version is unknown. */
export function pickMode(wanted: 'auto' | SidecarMode, v: KubeVersion | null): SidecarMode {
  if (wanted !== 'auto') return wanted;
  return atLeast(v, NATIVE_SIDECAR_MIN) ? 'native' : 'classic';
}

/** seccompProfile is a securityContext field from 1.19 (the chart's fdstore.securityContext). */
export const SECCOMP_FIELD_MIN = { major: 1, minor: 19 } as const;
