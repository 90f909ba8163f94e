/** Stored bytes or metadata failed authentication: never serve anything from them. */
export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IntegrityError";
  }
}

/** The plaintext source ended before (or ran past) the length announced up front. */
export class LengthMismatchError extends Error {
  constructor(readonly expected: number, readonly received: number) {
    super(`expected ${expected} bytes, received ${received}`);
    this.name = "LengthMismatchError";
  }
}
