import { S3Error } from "../errors";

/**
 * AWS KMS JSON-protocol errors: `{"__type": "<Name>", "message": "..."}` with the name
 * SDKs and aws-cli map to exception classes. KMS answers client errors with HTTP 400 (the
 * AWS JSON protocol's convention), including AccessDeniedException.
 */
export class KmsApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = "KmsApiError";
  }
}

const e = (type: string, status = 400) => (message: string) => new KmsApiError(type, message, status);

export const KmsErrors = {
  AccessDenied: e("AccessDeniedException"),
  AlreadyExists: e("AlreadyExistsException"),
  DependencyTimeout: e("DependencyTimeoutException", 503),
  Disabled: e("DisabledException"),
  DryRunOperation: e("DryRunOperationException"),
  IncorrectKey: e("IncorrectKeyException"),
  InvalidCiphertext: e("InvalidCiphertextException"),
  InvalidKeyUsage: e("InvalidKeyUsageException"),
  IncompleteSignature: e("IncompleteSignatureException"),
  InvalidAliasName: e("InvalidAliasNameException"),
  InvalidArn: e("InvalidArnException"),
  InvalidMarker: e("InvalidMarkerException"),
  InvalidSignature: e("InvalidSignatureException"),
  InvalidState: e("KMSInvalidStateException"),
  Internal: e("KMSInternalException", 500),
  LimitExceeded: e("LimitExceededException"),
  MalformedPolicyDocument: e("MalformedPolicyDocumentException"),
  MissingAuthenticationToken: e("MissingAuthenticationTokenException"),
  NotAuthorized: e("NotAuthorizedException"),
  NotFound: e("NotFoundException"),
  Serialization: e("SerializationException"),
  UnknownOperation: e("UnknownOperationException"),
  UnrecognizedClient: e("UnrecognizedClientException"),
  UnsupportedOperation: e("UnsupportedOperationException"),
  Validation: e("ValidationException"),
} as const;

/** AWS's wording for a constraint failure on one request member (camelCase, as AWS prints it). */
export function validationError(member: string, value: unknown, constraint: string): KmsApiError {
  const shown = value === undefined || value === null ? "null" : `'${String(value)}'`;
  return KmsErrors.Validation(`1 validation error detected: Value ${shown} at '${camel(member)}' failed to satisfy constraint: ${constraint}`);
}

function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * The SigV4 verifier speaks S3; KMS clients expect AWS's JSON-protocol names for the same
 * failures (what AWS KMS itself answers for each).
 */
export function fromAuthError(error: S3Error): KmsApiError {
  switch (error.code) {
    case "InvalidAccessKeyId":
      return KmsErrors.UnrecognizedClient("The security token included in the request is invalid.");
    case "SignatureDoesNotMatch":
      return KmsErrors.InvalidSignature(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      );
    case "RequestTimeTooSkewed":
      return KmsErrors.InvalidSignature(`Signature expired: ${error.details["RequestTime"] ?? ""} is now earlier or later than the allowed window of 15 minutes.`);
    case "AuthorizationHeaderMalformed":
    case "AuthorizationQueryParametersError":
      return KmsErrors.IncompleteSignature(error.message);
    case "XAmzContentSHA256Mismatch":
      return KmsErrors.InvalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.");
    case "AccessDenied":
      // Unsigned x-amz-* headers, missing date: the request is not properly signed.
      return KmsErrors.IncompleteSignature(error.message);
    default:
      return KmsErrors.IncompleteSignature(error.message);
  }
}

export function errorBody(error: KmsApiError): string {
  return JSON.stringify({ __type: error.type, message: error.message });
}
