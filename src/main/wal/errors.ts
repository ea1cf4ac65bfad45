// The WAL's startup error: damage that is not a torn tail. Never recovered from silently, because
// dropping acknowledged records would lose committed writes; an operator has to look.

export class WalCorruptError extends Error {
  /** Segment file path, and byte offset of the first bad record in it. */
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(`wal: corrupt segment ${file} at byte offset ${offset}: ${reason}`);
    this.name = 'WalCorruptError';
    this.file = file;
    this.offset = offset;
  }
}
