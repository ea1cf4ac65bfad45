/** A member cannot start for a reason outside the code (a path, a port, the data on disk, the cluster):
 * reported as one line naming it, without a stack (cli.ts). */
export class StartupError extends Error {}
