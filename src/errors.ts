/**
 * S3 errors: AWS's codes, HTTP statuses and messages, copied exactly because clients
 * and people grep for them. Every failure a handler raises is an S3Error; anything else
 * becomes InternalError without its stack or message leaving the worker.
 */
export class S3Error extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra elements AWS adds to <Error> (e.g. BucketName, Key, Condition). */
    readonly details: Record<string, string> = {},
    /** Extra response headers (e.g. Allow on 405, x-amz-* on 304/412). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "S3Error";
  }
}

const e = (code: string, status: number, message: string) =>
  (details?: Record<string, string>, msg?: string) => new S3Error(code, status, msg ?? message, details);

/** The catalogue: call with optional details and an optional message override. */
export const Errors = {
  AccessDenied: e("AccessDenied", 403, "Access Denied"),
  AccessControlListNotSupported: e("AccessControlListNotSupported", 400, "The bucket does not allow ACLs"),
  AccountProblem: e("AccountProblem", 403, "There is a problem with your AWS account that prevents the action from completing successfully."),
  AuthorizationHeaderMalformed: e("AuthorizationHeaderMalformed", 400, "The authorization header is malformed."),
  AuthorizationQueryParametersError: e("AuthorizationQueryParametersError", 400, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."),
  BadRequest: e("BadRequest", 400, "Bad Request"),
  BadDigest: e("BadDigest", 400, "The Content-MD5 you specified did not match what we received."),
  BucketAlreadyExists: e("BucketAlreadyExists", 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."),
  BucketAlreadyOwnedByYou: e("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it."),
  BucketNotEmpty: e("BucketNotEmpty", 409, "The bucket you tried to delete is not empty"),
  CORSResponse: e("CORSResponse", 403, "CORS is not enabled for this bucket."),
  EntityTooLarge: e("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"),
  EntityTooSmall: e("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."),
  ExpiredToken: e("ExpiredToken", 400, "The provided token has expired."),
  IllegalLocationConstraintException: e("IllegalLocationConstraintException", 400, "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."),
  IncompleteBody: e("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header"),
  IncorrectNumberOfFilesInPostRequest: e("IncorrectNumberOfFilesInPostRequest", 400, "POST requires exactly one file upload per request."),
  InternalError: e("InternalError", 500, "We encountered an internal error. Please try again."),
  InvalidAccessKeyId: e("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."),
  InvalidArgument: e("InvalidArgument", 400, "Invalid Argument"),
  InvalidBucketName: e("InvalidBucketName", 400, "The specified bucket is not valid."),
  InvalidBucketState: e("InvalidBucketState", 409, "The request is not valid with the current state of the bucket."),
  InvalidChunkSizeError: e("InvalidChunkSizeError", 403, "Only the last chunk is allowed to have a size less than 8192 bytes"),
  InvalidDigest: e("InvalidDigest", 400, "The Content-MD5 you specified is not valid."),
  InvalidEncryptionAlgorithmError: e("InvalidEncryptionAlgorithmError", 400, "The encryption request you specified is not valid. Supported value: AES256."),
  InvalidLocationConstraint: e("InvalidLocationConstraint", 400, "The specified location-constraint is not valid"),
  InvalidPart: e("InvalidPart", 400, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."),
  InvalidPartOrder: e("InvalidPartOrder", 400, "The list of parts was not in ascending order. Parts must be ordered by part number."),
  InvalidPolicyDocument: e("InvalidPolicyDocument", 400, "The content of the form does not meet the conditions specified in the policy document."),
  InvalidRange: e("InvalidRange", 416, "The requested range is not satisfiable"),
  InvalidPartNumber: e("InvalidPartNumber", 416, "The requested partnumber is not satisfiable"),
  InvalidRequest: e("InvalidRequest", 400, "Invalid Request"),
  InvalidStorageClass: e("InvalidStorageClass", 400, "The storage class you specified is not valid"),
  InvalidTag: e("InvalidTag", 400, "The tag provided was not a valid tag."),
  InvalidURI: e("InvalidURI", 400, "Couldn't parse the specified URI."),
  KeyTooLongError: e("KeyTooLongError", 400, "Your key is too long"),
  MalformedACLError: e("MalformedACLError", 400, "The XML you provided was not well-formed or did not validate against our published schema."),
  MalformedPolicy: e("MalformedPolicy", 400, "Policies must be valid JSON and the first byte must be '{'"),
  MalformedPOSTRequest: e("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data."),
  MalformedTrailerError: e("MalformedTrailerError", 400, "The request contained trailing data that was not well-formed or did not conform to our published schema."),
  MalformedXML: e("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema"),
  MaxMessageLengthExceeded: e("MaxMessageLengthExceeded", 400, "Your request was too big."),
  MaxPostPreDataLengthExceededError: e("MaxPostPreDataLengthExceededError", 400, "Your POST request fields preceding the upload file were too large."),
  MetadataTooLarge: e("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."),
  MethodNotAllowed: e("MethodNotAllowed", 405, "The specified method is not allowed against this resource."),
  MissingContentLength: e("MissingContentLength", 411, "You must provide the Content-Length HTTP header."),
  MissingRequestBodyError: e("MissingRequestBodyError", 400, "Request Body is empty"),
  MissingSecurityHeader: e("MissingSecurityHeader", 400, "Your request was missing a required header"),
  NoSuchBucket: e("NoSuchBucket", 404, "The specified bucket does not exist"),
  NoSuchBucketPolicy: e("NoSuchBucketPolicy", 404, "The bucket policy does not exist"),
  NoSuchCORSConfiguration: e("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"),
  NoSuchKey: e("NoSuchKey", 404, "The specified key does not exist."),
  NoSuchVersion: e("NoSuchVersion", 404, "The specified version does not exist."),
  NoSuchUpload: e("NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."),
  NotImplemented: e("NotImplemented", 501, "A header you provided implies functionality that is not implemented"),
  OperationAborted: e("OperationAborted", 409, "A conflicting conditional operation is currently in progress against this resource. Please try again."),
  PreconditionFailed: e("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"),
  RequestTimeout: e("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period."),
  RequestTimeTooSkewed: e("RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large."),
  ServerSideEncryptionConfigurationNotFoundError: e("ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found"),
  SignatureDoesNotMatch: e("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
  XAmzContentSHA256Mismatch: e("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
  // KMS failures surfaced through S3 keep AWS's "KMS." codes and answer 400.
  KmsNotFound: e("KMS.NotFoundException", 400, "Invalid keyId"),
  KmsDisabled: e("KMS.DisabledException", 400, "The key is disabled."),
  KmsInvalidState: e("KMS.KMSInvalidStateException", 400, "The key is pending deletion."),
} as const;

/** 304 has no body; S3Error carries it so conditional logic can throw uniformly. */
export function notModified(headers: Record<string, string>): S3Error {
  return new S3Error("NotModified", 304, "Not Modified", {}, headers);
}
