import { Errors, type S3Error } from "../errors";

/** 400 MalformedPolicy with a message naming the problem (AWS's wording where known). */
export function malformed(message: string): S3Error {
  return Errors.MalformedPolicy({}, message);
}
