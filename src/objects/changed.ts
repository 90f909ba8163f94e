/**
 * The object at a key was replaced (or deleted) between two R2 calls of one read, so the
 * read cannot be completed from the version it started on. Not an integrity failure:
 * nothing was tampered with, the reader just lost a race with a writer. readObject starts
 * over on the current version; elsewhere it answers 500 InternalError (retryable).
 */
export class ObjectChangedError extends Error {
  constructor(message = "the object changed while it was being read") {
    super(message);
    this.name = "ObjectChangedError";
  }
}
