/** The uids the image and the chart use: the agent's (not 65532, docs/security.md) and the demo app's. */
export const AGENT_UID = 64919;
export const APP_UID = 10001;
