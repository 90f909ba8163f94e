/**
 * Reason phrases for the status line. HTTP/1.1 allows an empty one, but botocore's
 * Expect: 100-continue path (aws-cli, boto3: every PutObject/UploadPart) parses a final
 * response that arrives before the body only when the status line has three parts; with
 * "HTTP/1.1 200 " it loses the response and reports "Connection was closed". S3 sends them.
 */
const PHRASES: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Payload Too Large",
  416: "Requested Range Not Satisfiable",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? "";
}
