// wrangler (and @cloudflare/vitest-plugin, which reads the same rules) bundles a `.wasm`
// import as a CompiledWasm module: the default export is an already compiled
// WebAssembly.Module, because Workers refuse to compile wasm from bytes at run time.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
