import { readConfig, type Config, type Env } from "./env";
import { keyringFor } from "./kms/keyring";
import { KeyService } from "./kms/service";
import type { ObjectDeps } from "./objects/write";
import { BucketStore } from "./store/buckets";
import { IdentityStore } from "./store/identities";

/** Everything a request handler talks to, built once per request from the bindings. */
export interface Services {
  env: Env;
  config: Config;
  keys: KeyService;
  buckets: BucketStore;
  identities: IdentityStore;
  objects: ObjectDeps;
}

export function makeServices(env: Env): Services {
  const config = readConfig(env);
  const keys = new KeyService(env.DB, keyringFor(env), config.region, config.keyCacheTtlMs, {
    env: env as unknown as Record<string, unknown>,
    cacheMs: config.externalKeyCacheMs,
    timeoutMs: config.externalKmsTimeoutMs,
  });
  return {
    env,
    config,
    keys,
    buckets: new BucketStore(env.DB, config.keyCacheTtlMs),
    identities: new IdentityStore(env.DB, keys, config.keyCacheTtlMs),
    objects: { r2: env.OBJECTS, keys },
  };
}
