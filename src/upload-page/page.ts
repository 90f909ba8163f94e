/**
 * The upload page: plain HTML and a small script (script.ts), no build step. Settings the
 * script needs travel as data attributes, since the CSP allows no inline script.
 */

export function pageHtml(options: { bucket: string; maxBytes: number; singlePostMaxBytes: number; tokenRequired: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Encrypted upload</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2430; background: #f5f7fa; }
  main { max-width: 40rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 12px; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  h1 { margin-top: 0; font-size: 1.5rem; }
  .muted { color: #5b6575; font-size: 0.9rem; }
  label { display: block; margin: 1rem 0 0.25rem; font-weight: 600; }
  input[type=password] { width: 100%; padding: 0.4rem; box-sizing: border-box; }
  button { margin-top: 1rem; padding: 0.6rem 1.4rem; font-size: 1rem; border: 0; border-radius: 6px; background: #2457d6; color: #fff; cursor: pointer; }
  button:disabled { background: #9aa7c2; cursor: default; }
  progress { width: 100%; height: 1.2rem; margin-top: 1rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; margin-top: 1.5rem; }
  dt { font-weight: 600; }
  dd { margin: 0; word-break: break-all; font-family: ui-monospace, monospace; font-size: 0.85rem; }
  .error { margin-top: 1rem; padding: 0.8rem; border-radius: 6px; background: #fdecec; color: #8a1c1c; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<main data-single-post-max="${options.singlePostMaxBytes}">
  <h1>Encrypted upload</h1>
  <p class="muted">Files go straight from this browser to bucket <strong id="bucket">${escapeHtml(options.bucket)}</strong>
  and are stored encrypted with SSE-KMS: up to ${formatBytes(options.singlePostMaxBytes)} in one presigned POST form, larger
  files in parts, four at a time, each retried on failure; an interrupted upload resumes when the same file is chosen again
  (also after reloading the page). Largest file: ${formatBytes(options.maxBytes)}.</p>
  <form id="upload-form">
    <div ${options.tokenRequired ? "" : "hidden"}>
      <label for="token">Access token</label>
      <input type="password" id="token" autocomplete="off">
    </div>
    <label for="file">File</label>
    <input type="file" id="file" required>
    <br>
    <button type="submit" id="upload">Upload</button>
  </form>
  <div id="progress-box" hidden>
    <progress id="progress" max="100" value="0"></progress>
    <div class="muted"><span id="percent">0%</span> <span id="progress-bytes"></span></div>
  </div>
  <p id="status" class="muted" role="status" hidden></p>
  <div id="error" class="error" role="alert" hidden></div>
  <section id="result" hidden>
    <dl>
      <dt>Key</dt><dd id="result-key"></dd>
      <dt>Size</dt><dd id="result-size"></dd>
      <dt>ETag</dt><dd id="result-etag"></dd>
      <dt>Encryption</dt><dd id="result-encryption"></dd>
      <dt>KMS key ARN</dt><dd id="result-key-arn"></dd>
      <dt>Download</dt><dd><a id="download" href="#">presigned GET link</a> <span class="muted">(valid 1 hour)</span></dd>
    </dl>
  </section>
</main>
<script src="/_upload/app.js"></script>
</body>
</html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
