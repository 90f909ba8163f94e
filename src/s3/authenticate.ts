import { checkSigV4, parseAuth, verifySigV2, verifySigV4, type ParsedAuth, type VerifiedSigV4 } from "../auth/sigv4";
import type { Services } from "../services";
import type { Principal } from "../store/identities";
import type { Address } from "./addressing";
import { Errors } from "../errors";

export interface Authentication {
  auth: ParsedAuth;
  verified: VerifiedSigV4 | null;
  principal: Principal | null;
}

/**
 * Verifies the request's signature (SigV4 header or presigned query; SigV2 for legacy
 * clients) and resolves the principal. The body is verified later, as it streams.
 */
export async function authenticate(request: Request, services: Services, address: Address, service = "s3"): Promise<Authentication> {
  const auth = parseAuth(request);
  if (auth.kind === "anonymous") return { auth, verified: null, principal: null };
  if (auth.kind === "v2") {
    const identity = await services.identities.lookup(auth.accessKeyId);
    if (!identity) throw Errors.InvalidAccessKeyId({ AWSAccessKeyId: auth.accessKeyId });
    const bucketPrefix = address.style === "virtual" && address.bucket ? `/${address.bucket}` : "";
    await verifySigV2(request, auth, identity.secret, { bucketPrefix });
    return { auth, verified: null, principal: identity.principal };
  }
  const expected = { region: services.config.region, service };
  checkSigV4(request, auth, expected);
  const identity = await services.identities.lookup(auth.accessKeyId);
  if (!identity) throw Errors.InvalidAccessKeyId({ AWSAccessKeyId: auth.accessKeyId });
  const verified = await verifySigV4(request, auth, identity.secret, expected);
  return { auth, verified, principal: identity.principal };
}
